//===- ScheduleTest.cpp - Pipeline schedule invariants --------------------===//

#include "octet/Schedule/PipelineSchedule.h"

#include "gtest/gtest.h"

#include <algorithm>

using namespace octet::schedule;

namespace {

Schedule make(Kind kind, int64_t n, int64_t c) {
  std::string error;
  std::optional<Schedule> s = build(kind, n, c, error);
  EXPECT_TRUE(s.has_value()) << error;
  return s ? *s : Schedule{};
}

TEST(ScheduleTest, DualPipeVIsCompleteAndDeadlockFreeForTheIssueRange) {
  for (int64_t n = 1; n <= 8; ++n)
    for (int64_t c = 2 * n; c <= 4 * n; ++c) {
      Schedule s = make(Kind::DualPipeV, n, c);
      EXPECT_EQ(checkInvariants(s), "") << "N=" << n << " C=" << c;
      EXPECT_EQ(checkDeadlockFree(s), "") << "N=" << n << " C=" << c;
    }
}

TEST(ScheduleTest, DualPipeIsCompleteAndDeadlockFreeForTheIssueRange) {
  for (int64_t n = 2; n <= 8; n += 2)
    for (int64_t c = 2 * n; c <= 4 * n; c += 2) {
      Schedule s = make(Kind::DualPipe, n, c);
      EXPECT_EQ(checkInvariants(s), "") << "N=" << n << " C=" << c;
      EXPECT_EQ(checkDeadlockFree(s), "") << "N=" << n << " C=" << c;
    }
}

TEST(ScheduleTest, ZB1PIsCompleteAndDeadlockFree) {
  for (int64_t n = 1; n <= 8; ++n)
    for (int64_t c = 1; c <= 4 * n; ++c) {
      Schedule s = make(Kind::ZB1P, n, c);
      EXPECT_EQ(checkInvariants(s), "") << "P=" << n << " C=" << c;
      EXPECT_EQ(checkDeadlockFree(s), "") << "P=" << n << " C=" << c;
    }
}

TEST(ScheduleTest, InterleavedIsCompleteAndDeadlockFree) {
  for (int64_t n = 1; n <= 8; ++n)
    for (int64_t v : {1, 2, 3})
      for (int64_t c = n; c <= 4 * n; c += n) {
        std::string error;
        std::optional<Schedule> s =
            build(Kind::Interleaved1F1B, n, c, error, v);
        ASSERT_TRUE(s) << error;
        EXPECT_EQ(checkInvariants(*s), "") << "P=" << n << " v=" << v;
        EXPECT_EQ(checkDeadlockFree(*s), "") << "P=" << n << " v=" << v;
      }
}

TEST(ScheduleTest, OneFOneB) {
  Schedule s = make(Kind::OneFOneB, 4, 8);
  EXPECT_EQ(checkInvariants(s), "");
  EXPECT_EQ(checkDeadlockFree(s), "");
  // Rank 0 warms up with P - 1 = 3 forwards.
  EXPECT_EQ(s.perRank[0][0].str() + "," + s.perRank[0][3].str() + "," +
                s.perRank[0][4].str(),
            "0F0,0F3,0B0");
}

TEST(ScheduleTest, DualPipeVOneRank) {
  // N = 1, C = 2: F(0) then F(1) (step 2); the mid rank's first pair runs
  // unoverlapped, then F(1)&B(0) (step 4); then B(1), B(0) with the weight
  // gradients deferred from iteration 0 on (h = 0 is even: between them).
  Schedule s = make(Kind::DualPipeV, 1, 2);
  EXPECT_EQ(s.str(), "rank 0: 0F0, 1F0, 0F1, 1B0, (1F1;0B0), 1B1, 0I1, 0W1\n");
}

TEST(ScheduleTest, SizesAreChecked) {
  std::string error;
  EXPECT_FALSE(build(Kind::DualPipe, 3, 6, error));
  EXPECT_EQ(error, "dualpipe needs an even number of ranks, got 3");
  EXPECT_FALSE(build(Kind::DualPipe, 4, 6, error));
  EXPECT_EQ(
      error,
      "dualpipe needs an even number of micro-batches >= 2 x ranks (8), got 6");
  EXPECT_FALSE(build(Kind::DualPipeV, 4, 7, error));
  EXPECT_EQ(error,
            "dualpipev needs at least 2 x ranks (8) micro-batches, got 7");
}

TEST(ScheduleTest, ABrokenScheduleIsCaught) {
  Schedule s = make(Kind::DualPipeV, 2, 4);
  std::swap(s.perRank[1][0], s.perRank[1][1]);
  EXPECT_NE(checkInvariants(s) + checkDeadlockFree(s), "");
  Schedule t = make(Kind::OneFOneB, 2, 2);
  t.perRank[0].pop_back();
  EXPECT_NE(checkInvariants(t), "");
}

} // namespace

namespace {

// The bubble table of dualpipe.md in the balanced case F = I = W = 1,
// B = 2, F&B = F + B = 3, P the number of pipeline stages a micro-batch
// passes: 1F1B (P-1)(F+B); DualPipe and DualPipeV (P/2-1)(F&B+B-3W).
TEST(SimulationTest, BubblesMatchTheFormulaTableInTheBalancedCase) {
  Costs balanced;
  for (int64_t n = 2; n <= 8; ++n) {
    Simulation one = simulate(make(Kind::OneFOneB, n, 4 * n), balanced);
    for (double b : one.bubble)
      EXPECT_DOUBLE_EQ(b, (n - 1) * 3.0) << "1f1b P=" << n;
    // Interleaved with v chunks: (P-1)(F+B)/v, F and B being a whole
    // stage's; each chunk costs 1/v of them.
    for (int64_t v : {2, 4}) {
      std::string error;
      Costs chunk{1.0 / v, 2.0 / v, 1.0 / v, 1.0 / v, std::nullopt};
      Simulation il =
          simulate(*build(Kind::Interleaved1F1B, n, 4 * n, error, v), chunk);
      for (double b : il.bubble)
        EXPECT_NEAR(b, (n - 1) * 3.0 / v, 1e-9) << "interleaved P=" << n;
    }
    Simulation zb = simulate(make(Kind::ZB1P, n, 4 * n), balanced);
    for (double b : zb.bubble)
      EXPECT_DOUBLE_EQ(b, (n - 1) * (3.0 - 2.0)) << "zb1p P=" << n;
    Simulation v = simulate(make(Kind::DualPipeV, n, 4 * n), balanced);
    double formulaV = (2 * n / 2.0 - 1) * (3 + 2 - 3);
    EXPECT_DOUBLE_EQ(*std::max_element(v.bubble.begin(), v.bubble.end()),
                     formulaV)
        << "dualpipev N=" << n;
    if (n % 2 == 0) {
      Simulation d = simulate(make(Kind::DualPipe, n, 4 * n), balanced);
      double formula = (n / 2.0 - 1) * (3 + 2 - 3);
      EXPECT_DOUBLE_EQ(*std::max_element(d.bubble.begin(), d.bubble.end()),
                       formula)
          << "dualpipe P=" << n;
    }
  }
}

// Stage multipliers stretch each action by its own stage's factor: one
// micro-batch through two stages costs F0 + F1 + B1 + B0.
TEST(SimulationTest, StageScaleStretchesEachStage) {
  Costs costs;
  costs.stageScale = {2.0, 1.0};
  Simulation one = simulate(make(Kind::OneFOneB, 2, 1), costs);
  EXPECT_DOUBLE_EQ(one.makespan, 2 * 1.0 + 1.0 + 2.0 + 2 * 2.0);
  EXPECT_DOUBLE_EQ(one.busy[0], 2 * 1.0 + 2 * 2.0);
  EXPECT_DOUBLE_EQ(one.busy[1], 1.0 + 2.0);
  // An overlapped F&B scales its parts by their stages: on DualPipeV's
  // single rank, (1F1;0B0) costs F x 3 + B x 1.
  costs.stageScale = {1.0, 3.0};
  Schedule v = make(Kind::DualPipeV, 1, 2);
  Simulation unscaled = simulate(v, Costs());
  Simulation scaled = simulate(v, costs);
  double busy = 0;
  for (const Action &a : v.perRank[0]) {
    double f = costs.scaleOf(a.stage);
    switch (a.type) {
    case Action::Forward:
      busy += 1.0 * f;
      break;
    case Action::Backward:
      busy += 2.0 * f;
      break;
    case Action::InputGrad:
    case Action::WeightGrad:
      busy += 1.0 * f;
      break;
    case Action::ForwardBackward:
      busy += 1.0 * f + 2.0 * costs.scaleOf(a.bwdStage);
      break;
    }
  }
  EXPECT_DOUBLE_EQ(scaled.busy[0], busy);
  EXPECT_GT(scaled.busy[0], unscaled.busy[0]);
}

// Each boundary between stages held by different ranks carries one
// activation forward and one gradient back per micro-batch.
TEST(SimulationTest, CountsPointToPointMessages) {
  for (int64_t n = 2; n <= 8; ++n) {
    int64_t c = 4 * n;
    auto inner = [&](int64_t r) { return (r < n - 1) + (r > 0); };
    for (Kind kind : {Kind::OneFOneB, Kind::ZB1P}) {
      Simulation one = simulate(make(kind, n, c), Costs());
      for (int64_t r = 0; r < n; ++r) {
        EXPECT_EQ(one.activationSends[r], r < n - 1 ? c : 0) << r;
        EXPECT_EQ(one.gradientSends[r], r > 0 ? c : 0) << r;
      }
    }
    // The V hands stage N-1 to stage N on rank N-1 without a message.
    Simulation v = simulate(make(Kind::DualPipeV, n, c), Costs());
    for (int64_t r = 0; r < n; ++r) {
      EXPECT_EQ(v.activationSends[r], c * inner(r)) << "dualpipev " << r;
      EXPECT_EQ(v.gradientSends[r], c * inner(r)) << "dualpipev " << r;
    }
    // DualPipe: each copy carries half of the micro-batches.
    if (n % 2 == 0) {
      Simulation d = simulate(make(Kind::DualPipe, n, c), Costs());
      for (int64_t r = 0; r < n; ++r) {
        EXPECT_EQ(d.activationSends[r], c / 2 * inner(r)) << "dualpipe " << r;
        EXPECT_EQ(d.gradientSends[r], c / 2 * inner(r)) << "dualpipe " << r;
      }
    }
    std::string error;
    Simulation il =
        simulate(*build(Kind::Interleaved1F1B, n, c, error, 3), Costs());
    for (int64_t r = 0; r < n; ++r) {
      EXPECT_EQ(il.activationSends[r], c * (3 - (r == n - 1))) << r;
      EXPECT_EQ(il.gradientSends[r], c * (3 - (r == 0))) << r;
    }
  }
}

// dualpipe.md: peak live activations are P + 1 on DualPipe's and
// DualPipeV's ranks (P stages a micro-batch passes: N, and 2N for the V)
// and do not grow with the micro-batches.
TEST(SimulationTest, PeakActivationsArePPlusOne) {
  for (int64_t n = 2; n <= 8; n += 2)
    for (int64_t c : {2 * n, 4 * n}) {
      Simulation d = simulate(make(Kind::DualPipe, n, c), Costs());
      EXPECT_EQ(
          *std::max_element(d.peakActivations.begin(), d.peakActivations.end()),
          n + 1)
          << "dualpipe P=" << n << " C=" << c;
      Simulation v = simulate(make(Kind::DualPipeV, n, c), Costs());
      EXPECT_EQ(
          *std::max_element(v.peakActivations.begin(), v.peakActivations.end()),
          2 * n + 1)
          << "dualpipev N=" << n << " C=" << c;
    }
}

} // namespace

namespace {

TEST(ScheduleCSVTest, RoundTripsEverySchedule) {
  for (Kind kind : {Kind::OneFOneB, Kind::ZB1P, Kind::DualPipeV})
    for (int64_t n = 1; n <= 4; ++n) {
      Schedule s = make(kind, n, 2 * n + 2);
      std::string error;
      std::optional<Schedule> back = parseCSV(toCSV(s), error);
      ASSERT_TRUE(back) << kindName(kind) << " N=" << n << ": " << error;
      EXPECT_EQ(back->str(), s.str());
      // The overlap suffix is optional on input.
      std::string bare = toCSV(s);
      for (size_t at; (at = bare.find("OVERLAP_F_B")) != std::string::npos;)
        bare.erase(at, 11);
      back = parseCSV(bare, error);
      ASSERT_TRUE(back) << error;
      EXPECT_EQ(back->str(), s.str());
    }
}

TEST(ScheduleCSVTest, RejectsWhatCannotRun) {
  std::string error;
  EXPECT_FALSE(parseCSV("", error));
  EXPECT_EQ(error, "the CSV holds no actions");
  EXPECT_FALSE(parseCSV("0F0,(0F1;0X0)\n", error));
  EXPECT_EQ(error, "row 1, cell 2 ('(0F1;0X0)'): expected "
                   "(<stage>F<mb>;<stage>B<mb>)");
  EXPECT_FALSE(parseCSV("0F0,0F0,0B0\n", error));
  EXPECT_NE(error.find("forwards out of order"), std::string::npos) << error;
}

} // namespace
