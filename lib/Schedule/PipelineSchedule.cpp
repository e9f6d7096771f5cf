//===- PipelineSchedule.cpp - Per-rank pipeline schedules -----------------===//

#include "octet/Schedule/PipelineSchedule.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <set>
#include <sstream>

using namespace octet::schedule;

std::optional<Kind> octet::schedule::parseKind(const std::string &name) {
  if (name == "1f1b")
    return Kind::OneFOneB;
  if (name == "zb1p")
    return Kind::ZB1P;
  if (name == "interleaved-1f1b")
    return Kind::Interleaved1F1B;
  if (name == "dualpipe")
    return Kind::DualPipe;
  if (name == "dualpipev")
    return Kind::DualPipeV;
  return std::nullopt;
}

const char *octet::schedule::kindName(Kind kind) {
  switch (kind) {
  case Kind::OneFOneB:
    return "1f1b";
  case Kind::ZB1P:
    return "zb1p";
  case Kind::Interleaved1F1B:
    return "interleaved-1f1b";
  case Kind::DualPipe:
    return "dualpipe";
  case Kind::DualPipeV:
    return "dualpipev";
  case Kind::Custom:
    return "custom";
  }
  return "?";
}

std::string Action::str() const {
  auto one = [](int64_t s, char c, int64_t m) {
    return std::to_string(s) + c + std::to_string(m);
  };
  switch (type) {
  case Forward:
    return one(stage, 'F', mb);
  case Backward:
    return one(stage, 'B', mb);
  case InputGrad:
    return one(stage, 'I', mb);
  case WeightGrad:
    return one(stage, 'W', mb);
  case ForwardBackward:
    return "(" + one(stage, 'F', mb) + ";" + one(bwdStage, 'B', bwdMb) + ")";
  }
  return "?";
}

std::string Schedule::str() const {
  std::ostringstream os;
  for (size_t r = 0; r < perRank.size(); ++r) {
    os << "rank " << r << ":";
    for (size_t i = 0; i < perRank[r].size(); ++i)
      os << (i ? ", " : " ") << perRank[r][i].str();
    os << "\n";
  }
  return os.str();
}

namespace {

/// One rank's program as it is written out: two local modules (phases),
/// each consuming its micro-batches in order, and the FIFO of deferred
/// weight gradients.
class RankProgram {
public:
  RankProgram(int64_t stage0, int64_t stage1) : stageOf{stage0, stage1} {}

  void f(int p) { out.push_back({Action::Forward, stageOf[p], nextF[p]++}); }
  void b(int p, bool deferWeight) {
    int64_t mb = nextB[p]++;
    if (!deferWeight) {
      out.push_back({Action::Backward, stageOf[p], mb});
      return;
    }
    out.push_back({Action::InputGrad, stageOf[p], mb});
    deferred.push_back({stageOf[p], mb});
  }
  void w() {
    auto [stage, mb] = deferred.front();
    deferred.pop_front();
    out.push_back({Action::WeightGrad, stage, mb});
  }
  /// F of phase p overlapped with the full backward of phase q.
  void fb(int p, int q) {
    Action a{Action::ForwardBackward, stageOf[p], nextF[p]++};
    a.bwdStage = stageOf[q];
    a.bwdMb = nextB[q]++;
    out.push_back(a);
  }

  std::vector<Action> out;
  std::deque<std::pair<int64_t, int64_t>> deferred;

private:
  int64_t stageOf[2];
  int64_t nextF[2] = {0, 0}, nextB[2] = {0, 0};
};

/// DualPipe's per-rank algorithm (dualpipe.md, steps 1-8), shared by both
/// variants: H half-pipeline ranks, h this rank's distance from the end, M
/// micro-batches per local module.
std::vector<Action> dualPipeRank(int64_t H, int64_t h, int64_t M, bool mid,
                                 int64_t stage0, int64_t stage1) {
  RankProgram r(stage0, stage1);
  for (int64_t i = 0; i < 2 * (H - h - 1); ++i) // 1
    r.f(0);
  for (int64_t i = 0; i < h + 1; ++i) { // 2
    r.f(0);
    r.f(1);
  }
  for (int64_t i = 0; i < H - h - 1; ++i) { // 3
    r.b(1, /*deferWeight=*/true);
    r.w();
    r.f(1);
  }
  for (int64_t i = 0; i < M - 2 * H + h + 1; ++i) { // 4
    if (i == 0 && mid) {
      r.f(0);
      r.b(1, false);
    } else {
      r.fb(0, 1);
    }
    r.fb(1, 0);
  }
  for (int64_t i = 0; i < H - h - 1; ++i) { // 5
    r.b(1, false);
    r.fb(1, 0);
  }
  bool zeroBubble = false; // 6
  int64_t step6 = h + 1;
  for (int64_t i = 0; i < step6; ++i) {
    if (i == step6 / 2 && h % 2 == 1)
      zeroBubble = true;
    r.b(1, zeroBubble);
    if (i == step6 / 2 && h % 2 == 0)
      zeroBubble = true;
    r.b(0, zeroBubble);
  }
  for (int64_t i = 0; i < H - h - 1; ++i) { // 7
    r.w();
    r.b(0, true);
  }
  for (int64_t i = 0; i < h + 1; ++i) // 8
    r.w();
  return std::move(r.out);
}

} // namespace

std::optional<Schedule> octet::schedule::build(Kind kind, int64_t ranks,
                                               int64_t microbatches,
                                               std::string &error,
                                               int64_t chunks) {
  Schedule s;
  s.kind = kind;
  s.ranks = ranks;
  s.microbatches = microbatches;
  if (ranks < 1 || microbatches < 1) {
    error = "ranks and micro-batches must be positive";
    return std::nullopt;
  }
  int64_t n = ranks, c = microbatches;
  switch (kind) {
  case Kind::OneFOneB: {
    s.stages = n;
    for (int64_t r = 0; r < n; ++r) {
      std::vector<Action> out;
      int64_t warmup = std::min(n - r - 1, c);
      for (int64_t i = 0; i < warmup; ++i)
        out.push_back({Action::Forward, r, i});
      for (int64_t i = 0; i < c - warmup; ++i) {
        out.push_back({Action::Forward, r, warmup + i});
        out.push_back({Action::Backward, r, i});
      }
      for (int64_t i = c - warmup; i < c; ++i)
        out.push_back({Action::Backward, r, i});
      s.perRank.push_back(std::move(out));
    }
    return s;
  }
  case Kind::ZB1P: {
    // ZB-H1 (Qi et al.): 1F1B with each backward split into I and a
    // deferred W. Rank r defers r weight gradients, which fill the bubble
    // its cool-down would leave, so the peak memory stays 1F1B's.
    s.stages = n;
    for (int64_t r = 0; r < n; ++r) {
      RankProgram p(r, r);
      int64_t warmup = std::min(n - r - 1, c);
      for (int64_t i = 0; i < warmup; ++i)
        p.f(0);
      for (int64_t i = 0; i < c - warmup; ++i) {
        p.f(0);
        p.b(0, /*deferWeight=*/true);
        if (int64_t(p.deferred.size()) > r)
          p.w();
      }
      for (int64_t i = c - warmup; i < c; ++i) {
        p.b(0, true);
        p.w();
      }
      while (!p.deferred.empty())
        p.w();
      s.perRank.push_back(std::move(p.out));
    }
    return s;
  }
  case Kind::Interleaved1F1B: {
    // Megatron's interleaved 1F1B: v model chunks per rank, micro-batches
    // taken in groups of `ranks`, chunk after chunk; a longer warm-up lets
    // each rank start its first backward as soon as the last chunk can.
    int64_t v = chunks;
    if (v < 1 || c % n != 0) {
      error = "interleaved-1f1b needs micro-batches a multiple of the ranks (" +
              std::to_string(n) + "), got " + std::to_string(c);
      return std::nullopt;
    }
    s.stages = v * n;
    int64_t total = v * c;
    auto forwardChunk = [&](int64_t k) { return (k / n) % v; };
    auto mbOf = [&](int64_t k) { return (k / (n * v)) * n + k % n; };
    for (int64_t r = 0; r < n; ++r) {
      std::vector<Action> out;
      int64_t warmup = std::min(total, (n - r - 1) * 2 + (v - 1) * n);
      int64_t f = 0, b = 0;
      auto emitF = [&] {
        out.push_back({Action::Forward, forwardChunk(f) * n + r, mbOf(f)});
        ++f;
      };
      auto emitB = [&] {
        int64_t chunk = v - 1 - forwardChunk(b);
        out.push_back({Action::Backward, chunk * n + r, mbOf(b)});
        ++b;
      };
      for (int64_t i = 0; i < warmup; ++i)
        emitF();
      while (f < total) {
        emitF();
        emitB();
      }
      while (b < total)
        emitB();
      s.perRank.push_back(std::move(out));
    }
    return s;
  }
  case Kind::DualPipe:
    if (n % 2 != 0) {
      error =
          "dualpipe needs an even number of ranks, got " + std::to_string(n);
      return std::nullopt;
    }
    if (c % 2 != 0 || c < 2 * n) {
      error = "dualpipe needs an even number of micro-batches >= 2 x ranks (" +
              std::to_string(2 * n) + "), got " + std::to_string(c);
      return std::nullopt;
    }
    s.stages = 2 * n;
    for (int64_t r = 0; r < n; ++r) {
      int64_t h = std::min(r, n - 1 - r);
      bool mid = r == n / 2 - 1 || r == n / 2;
      // Copy 0's stage r is global r; copy 1's stage n-1-r is 2n-1-r. The
      // second half runs the mirrored program: its phase 0 is copy 1.
      int64_t copy0 = r, copy1 = 2 * n - 1 - r;
      bool firstHalf = r < n / 2;
      s.perRank.push_back(dualPipeRank(n / 2, h, c / 2, mid,
                                       firstHalf ? copy0 : copy1,
                                       firstHalf ? copy1 : copy0));
    }
    return s;
  case Kind::DualPipeV:
    if (c < 2 * n) {
      error = "dualpipev needs at least 2 x ranks (" + std::to_string(2 * n) +
              ") micro-batches, got " + std::to_string(c);
      return std::nullopt;
    }
    s.stages = 2 * n;
    for (int64_t r = 0; r < n; ++r)
      s.perRank.push_back(dualPipeRank(n, r, c, r == n - 1, r, 2 * n - 1 - r));
    return s;
  case Kind::Custom:
    break;
  }
  error = "a custom schedule comes from a CSV file";
  return std::nullopt;
}

namespace {

/// The model's chains of stages: where activations come from and where
/// gradients come from.
struct Topology {
  int64_t stages;
  std::set<int64_t> firstStages, lastStages;
  int64_t microbatchesPerStage;

  explicit Topology(const Schedule &s) : stages(s.stages) {
    if (s.kind == Kind::DualPipe) {
      firstStages = {0, s.ranks};
      lastStages = {s.ranks - 1, 2 * s.ranks - 1};
      microbatchesPerStage = s.microbatches / 2;
    } else {
      firstStages = {0};
      lastStages = {s.stages - 1};
      microbatchesPerStage = s.microbatches;
    }
  }
};

int64_t holderOf(const Schedule &s, int64_t stage) {
  if (s.kind == Kind::OneFOneB || s.kind == Kind::ZB1P)
    return stage;
  if (s.kind == Kind::Interleaved1F1B)
    return stage % s.ranks;
  if (s.kind == Kind::Custom) {
    // The rank that runs the stage's first action holds it.
    for (int64_t r = 0; r < int64_t(s.perRank.size()); ++r)
      for (const Action &a : s.perRank[r])
        if (a.stage == stage ||
            (a.type == Action::ForwardBackward && a.bwdStage == stage))
          return r;
    return -1;
  }
  return stage < s.ranks ? stage : 2 * s.ranks - 1 - stage;
}

} // namespace

std::string octet::schedule::checkInvariants(const Schedule &s) {
  Topology t(s);
  std::map<std::pair<int64_t, int64_t>, int> forwards, backwards, inputs,
      weights;
  std::map<int64_t, int64_t> lastF, lastB;
  std::ostringstream why;
  for (int64_t r = 0; r < int64_t(s.perRank.size()); ++r) {
    auto visitF = [&](int64_t stage, int64_t mb) {
      if (holderOf(s, stage) != r)
        why << "rank " << r << " runs stage " << stage << " it does not hold; ";
      if (lastF.count(stage) && lastF[stage] + 1 != mb)
        why << "stage " << stage << " forwards out of order at mb " << mb
            << "; ";
      lastF[stage] = mb;
      ++forwards[{stage, mb}];
    };
    auto visitB = [&](int64_t stage, int64_t mb, bool input) {
      if (holderOf(s, stage) != r)
        why << "rank " << r << " runs stage " << stage << " it does not hold; ";
      if (lastB.count(stage) && lastB[stage] + 1 != mb)
        why << "stage " << stage << " backwards out of order at mb " << mb
            << "; ";
      lastB[stage] = mb;
      ++(input ? inputs : backwards)[{stage, mb}];
    };
    for (const Action &a : s.perRank[r]) {
      switch (a.type) {
      case Action::Forward:
        visitF(a.stage, a.mb);
        break;
      case Action::Backward:
        visitB(a.stage, a.mb, false);
        break;
      case Action::InputGrad:
        visitB(a.stage, a.mb, true);
        break;
      case Action::WeightGrad:
        if (!inputs.count({a.stage, a.mb}))
          why << a.str() << " before its I; ";
        ++weights[{a.stage, a.mb}];
        break;
      case Action::ForwardBackward:
        visitF(a.stage, a.mb);
        visitB(a.bwdStage, a.bwdMb, false);
        break;
      }
    }
  }
  for (int64_t stage = 0; stage < t.stages; ++stage)
    for (int64_t mb = 0; mb < t.microbatchesPerStage; ++mb) {
      std::pair<int64_t, int64_t> key{stage, mb};
      if (forwards[key] != 1)
        why << "stage " << stage << " mb " << mb << " has " << forwards[key]
            << " forwards; ";
      int b = backwards[key], i = inputs[key], w = weights[key];
      if (!((b == 1 && i == 0 && w == 0) || (b == 0 && i == 1 && w == 1)))
        why << "stage " << stage << " mb " << mb << " has " << b << " B, " << i
            << " I, " << w << " W; ";
    }
  return why.str();
}

std::string octet::schedule::checkDeadlockFree(const Schedule &s) {
  Topology t(s);
  std::set<std::pair<int64_t, int64_t>> forwardDone, inputDone, inputGradOf;
  auto forwardReady = [&](int64_t stage, int64_t mb) {
    return t.firstStages.count(stage) || forwardDone.count({stage - 1, mb});
  };
  auto backwardReady = [&](int64_t stage, int64_t mb) {
    if (t.lastStages.count(stage))
      return forwardDone.count({stage, mb}) > 0;
    return inputDone.count({stage + 1, mb}) > 0 &&
           forwardDone.count({stage, mb}) > 0;
  };
  std::vector<size_t> next(s.perRank.size(), 0);
  bool progress = true;
  while (progress) {
    progress = false;
    for (size_t r = 0; r < s.perRank.size(); ++r) {
      while (next[r] < s.perRank[r].size()) {
        const Action &a = s.perRank[r][next[r]];
        bool ready = false;
        switch (a.type) {
        case Action::Forward:
          ready = forwardReady(a.stage, a.mb);
          break;
        case Action::Backward:
        case Action::InputGrad:
          ready = backwardReady(a.stage, a.mb);
          break;
        case Action::WeightGrad:
          ready = inputGradOf.count({a.stage, a.mb}) > 0;
          break;
        case Action::ForwardBackward:
          ready =
              forwardReady(a.stage, a.mb) && backwardReady(a.bwdStage, a.bwdMb);
          break;
        }
        if (!ready)
          break;
        if (a.type == Action::Forward || a.type == Action::ForwardBackward)
          forwardDone.insert({a.stage, a.mb});
        if (a.type == Action::Backward || a.type == Action::InputGrad)
          inputDone.insert({a.stage, a.mb});
        if (a.type == Action::InputGrad)
          inputGradOf.insert({a.stage, a.mb});
        if (a.type == Action::ForwardBackward)
          inputDone.insert({a.bwdStage, a.bwdMb});
        ++next[r];
        progress = true;
      }
    }
  }
  std::ostringstream why;
  for (size_t r = 0; r < s.perRank.size(); ++r)
    if (next[r] < s.perRank[r].size())
      why << "rank " << r << " waits forever at " << s.perRank[r][next[r]].str()
          << "; ";
  return why.str();
}

Simulation octet::schedule::simulate(const Schedule &s, const Costs &costs) {
  Topology t(s);
  std::map<std::pair<int64_t, int64_t>, double> forwardEnd, inputEnd;
  Simulation sim;
  size_t n = s.perRank.size();
  sim.busy.assign(n, 0);
  sim.bubble.assign(n, 0);
  sim.peakActivations.assign(n, 0);
  sim.activationSends.assign(n, 0);
  sim.gradientSends.assign(n, 0);
  auto sendsActivation = [&](int64_t r, int64_t stage) {
    if (!t.lastStages.count(stage) && holderOf(s, stage + 1) != r)
      ++sim.activationSends[r];
  };
  auto sendsGradient = [&](int64_t r, int64_t stage) {
    if (!t.firstStages.count(stage) && holderOf(s, stage - 1) != r)
      ++sim.gradientSends[r];
  };
  std::vector<size_t> next(n, 0);
  std::vector<double> clock(n, 0);
  std::vector<int64_t> live(n, 0);

  auto forwardInputs = [&](int64_t stage, int64_t mb) -> std::optional<double> {
    if (t.firstStages.count(stage))
      return 0.0;
    auto it = forwardEnd.find({stage - 1, mb});
    if (it == forwardEnd.end())
      return std::nullopt;
    return it->second;
  };
  auto backwardInputs = [&](int64_t stage,
                            int64_t mb) -> std::optional<double> {
    auto own = forwardEnd.find({stage, mb});
    if (own == forwardEnd.end())
      return std::nullopt;
    if (t.lastStages.count(stage))
      return own->second;
    auto it = inputEnd.find({stage + 1, mb});
    if (it == inputEnd.end())
      return std::nullopt;
    return std::max(own->second, it->second);
  };

  bool progress = true;
  while (progress) {
    progress = false;
    for (size_t r = 0; r < n; ++r) {
      while (next[r] < s.perRank[r].size()) {
        const Action &a = s.perRank[r][next[r]];
        std::optional<double> ready;
        double cost = 0;
        switch (a.type) {
        case Action::Forward:
          ready = forwardInputs(a.stage, a.mb);
          cost = costs.forward * costs.scaleOf(a.stage);
          break;
        case Action::Backward:
          ready = backwardInputs(a.stage, a.mb);
          cost = costs.backward * costs.scaleOf(a.stage);
          break;
        case Action::InputGrad:
          ready = backwardInputs(a.stage, a.mb);
          cost = costs.inputGrad * costs.scaleOf(a.stage);
          break;
        case Action::WeightGrad: {
          auto it = inputEnd.find({a.stage, a.mb});
          if (it != inputEnd.end())
            ready = it->second;
          cost = costs.weightGrad * costs.scaleOf(a.stage);
          break;
        }
        case Action::ForwardBackward: {
          std::optional<double> f = forwardInputs(a.stage, a.mb);
          std::optional<double> b = backwardInputs(a.bwdStage, a.bwdMb);
          if (f && b)
            ready = std::max(*f, *b);
          double fs = costs.scaleOf(a.stage), bs = costs.scaleOf(a.bwdStage);
          cost = costs.forwardBackward
                     ? *costs.forwardBackward * (fs + bs) / 2
                     : costs.forward * fs + costs.backward * bs;
          break;
        }
        }
        if (!ready)
          break;
        double start = std::max(clock[r], *ready), end = start + cost;
        clock[r] = end;
        sim.busy[r] += cost;
        switch (a.type) {
        case Action::Forward:
          forwardEnd[{a.stage, a.mb}] = end;
          sendsActivation(r, a.stage);
          ++live[r];
          break;
        case Action::Backward:
          inputEnd[{a.stage, a.mb}] = end;
          sendsGradient(r, a.stage);
          --live[r];
          break;
        case Action::InputGrad:
          inputEnd[{a.stage, a.mb}] = end;
          sendsGradient(r, a.stage);
          break;
        case Action::WeightGrad:
          --live[r];
          break;
        case Action::ForwardBackward:
          forwardEnd[{a.stage, a.mb}] = end;
          inputEnd[{a.bwdStage, a.bwdMb}] = end;
          sendsActivation(r, a.stage);
          sendsGradient(r, a.bwdStage);
          break;
        }
        sim.peakActivations[r] = std::max(sim.peakActivations[r], live[r]);
        ++next[r];
        progress = true;
      }
    }
  }
  for (size_t r = 0; r < n; ++r)
    sim.makespan = std::max(sim.makespan, clock[r]);
  for (size_t r = 0; r < n; ++r)
    sim.bubble[r] = sim.makespan - sim.busy[r];
  return sim;
}

std::string octet::schedule::toCSV(const Schedule &s) {
  std::ostringstream os;
  for (const std::vector<Action> &rank : s.perRank) {
    for (size_t i = 0; i < rank.size(); ++i) {
      os << (i ? "," : "") << rank[i].str();
      if (rank[i].type == Action::ForwardBackward)
        os << "OVERLAP_F_B";
    }
    os << "\n";
  }
  return os.str();
}

namespace {

/// Parses "12F3" into (stage, letter, mb).
bool parseSimple(const std::string &cell, int64_t &stage, char &letter,
                 int64_t &mb) {
  size_t i = 0;
  auto number = [&](int64_t &out) {
    size_t start = i;
    while (i < cell.size() && std::isdigit(static_cast<unsigned char>(cell[i])))
      ++i;
    if (i == start || i - start > 9)
      return false;
    out = std::stoll(cell.substr(start, i - start));
    return true;
  };
  if (!number(stage) || i >= cell.size())
    return false;
  letter = cell[i++];
  return std::string("FBIW").find(letter) != std::string::npos && number(mb) &&
         i == cell.size();
}

} // namespace

std::optional<Schedule> octet::schedule::parseCSV(const std::string &text,
                                                  std::string &error) {
  Schedule s;
  s.kind = Kind::Custom;
  std::istringstream lines(text);
  std::string line;
  int64_t row = 0, maxStage = -1, maxMb = -1;
  while (std::getline(lines, line)) {
    ++row;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    std::vector<Action> actions;
    std::istringstream cells(line);
    std::string cell;
    int64_t column = 0;
    while (std::getline(cells, cell, ',')) {
      ++column;
      auto where = [&] {
        return "row " + std::to_string(row) + ", cell " +
               std::to_string(column) + " ('" + cell + "'): ";
      };
      cell.erase(0, cell.find_first_not_of(" \t\""));
      cell.erase(cell.find_last_not_of(" \t\"") + 1);
      Action a;
      char letter;
      const std::string suffix = "OVERLAP_F_B";
      std::string body = cell;
      if (body.size() > suffix.size() &&
          body.compare(body.size() - suffix.size(), suffix.size(), suffix) == 0)
        body.resize(body.size() - suffix.size());
      if (!body.empty() && body.front() == '(' && body.back() == ')') {
        size_t semi = body.find(';');
        int64_t fs, fm, bs, bm;
        char fl, bl;
        if (semi == std::string::npos ||
            !parseSimple(body.substr(1, semi - 1), fs, fl, fm) ||
            !parseSimple(body.substr(semi + 1, body.size() - semi - 2), bs, bl,
                         bm) ||
            fl != 'F' || bl != 'B') {
          error = where() + "expected (<stage>F<mb>;<stage>B<mb>)";
          return std::nullopt;
        }
        a = {Action::ForwardBackward, fs, fm, bs, bm};
        maxStage = std::max({maxStage, fs, bs});
        maxMb = std::max({maxMb, fm, bm});
      } else {
        int64_t stage, mb;
        if (!parseSimple(body, stage, letter, mb)) {
          error = where() + "expected <stage><F|B|I|W><mb>";
          return std::nullopt;
        }
        a.stage = stage;
        a.mb = mb;
        a.type = letter == 'F'   ? Action::Forward
                 : letter == 'B' ? Action::Backward
                 : letter == 'I' ? Action::InputGrad
                                 : Action::WeightGrad;
        maxStage = std::max(maxStage, stage);
        maxMb = std::max(maxMb, mb);
      }
      actions.push_back(a);
    }
    s.perRank.push_back(std::move(actions));
  }
  if (s.perRank.empty() || maxStage < 0) {
    error = "the CSV holds no actions";
    return std::nullopt;
  }
  s.ranks = int64_t(s.perRank.size());
  s.stages = maxStage + 1;
  s.microbatches = maxMb + 1;
  std::string problem = checkInvariants(s);
  if (problem.empty())
    problem = checkDeadlockFree(s);
  if (!problem.empty()) {
    error = problem;
    return std::nullopt;
  }
  return s;
}
