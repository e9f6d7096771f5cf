//===- StageFunctionsTest.cpp - A program's per-stage functions -----------===//

#include "octet/Runtime/PipelineRunner.h"

#include "gtest/gtest.h"

using namespace octet::runtime;

namespace {

TEST(StageFunctionsTest, ReadsOrderInputsAndReturns) {
  Program p;
  p.metadata["pipeline.functions"] = "fb_F0,fb_F1,fb_B1,fb_B0";
  p.metadata["pipeline.fb_F0.inputs"] = "arg0";
  p.metadata["pipeline.fb_F1.inputs"] = "fb_F0:0,arg1";
  p.metadata["pipeline.fb_B1.inputs"] = "fb_F1:2";
  p.metadata["pipeline.fb_B0.inputs"] = "fb_B1:0,fb_F0:1";
  p.metadata["pipeline.returns"] = "fb_F1:0,fb_F1:1";
  llvm::Expected<StageFunctions> s = StageFunctions::read(p);
  ASSERT_TRUE(bool(s)) << llvm::toString(s.takeError());
  EXPECT_EQ(s->order.size(), 4u);
  ASSERT_EQ(s->inputs["fb_F1"].size(), 2u);
  EXPECT_EQ(s->inputs["fb_F1"][0].function, "fb_F0");
  EXPECT_EQ(s->inputs["fb_F1"][0].result, 0u);
  EXPECT_EQ(s->inputs["fb_F1"][1].argument, 1);
  EXPECT_EQ(s->inputs["fb_B0"][1].result, 1u);
  ASSERT_EQ(s->returns.size(), 2u);
  EXPECT_EQ(s->returns[1].result, 1u);
}

TEST(StageFunctionsTest, NoStagesIsNotAnError) {
  llvm::Expected<StageFunctions> s = StageFunctions::read(Program());
  ASSERT_TRUE(bool(s)) << llvm::toString(s.takeError());
  EXPECT_TRUE(s->order.empty());
}

TEST(StageFunctionsTest, SaysWhatIsMalformed) {
  Program p;
  p.metadata["pipeline.functions"] = "fb_F0";
  p.metadata["pipeline.fb_F0.inputs"] = "arg0,fb_F9";
  p.metadata["pipeline.returns"] = "fb_F0:0";
  llvm::Expected<StageFunctions> s = StageFunctions::read(p);
  ASSERT_FALSE(bool(s));
  EXPECT_EQ(llvm::toString(s.takeError()),
            "the program's pipeline.fb_F0.inputs names 'fb_F9': expected "
            "arg<i> or <function>:<j>");
  p.metadata["pipeline.fb_F0.inputs"] = "arg0";
  p.metadata.erase("pipeline.returns");
  s = StageFunctions::read(p);
  ASSERT_FALSE(bool(s));
  EXPECT_EQ(llvm::toString(s.takeError()),
            "the program's pipeline returns no loss (pipeline.returns)");
}

} // namespace
