// RUN: octet-opt %s -split-input-file -verify-diagnostics --octet-split-pipeline-stages | FileCheck %s
// RUN: not octet-opt %s -split-input-file --octet-split-pipeline-stages=function=step 2>&1 | FileCheck %s --check-prefix=MISSING

// MISSING: error: octet-split-pipeline-stages: no function @step

// Two stages: the loss's use-def slice is the forward part; the rest (the
// gradients) the backward part. Parameters are repeated where used, also
// for octet.grad_accumulate, which names its parameter.
// CHECK-LABEL: func.func @forward_backward(
// CHECK-SAME: octet.stage_functions = ["forward_backward_F0", "forward_backward_F1", "forward_backward_B1", "forward_backward_B0"]
// CHECK-SAME: octet.stage_returns = ["forward_backward_F1:0"]

// CHECK-LABEL: func.func @forward_backward_F0(%arg0: tensor<4xf32>) -> tensor<4xf32>
// CHECK-SAME: attributes {octet.inputs = ["arg0"], octet.phase = "F", octet.stage = 0 : i64}
// CHECK: %[[W0:.*]] = octet.param "w0"
// CHECK: %[[A:.*]] = octet.add %arg0, %[[W0]]
// CHECK: return %[[A]]

// CHECK-LABEL: func.func @forward_backward_F1(%arg0: tensor<4xf32>) -> tensor<4xf32>
// CHECK-SAME: octet.inputs = ["forward_backward_F0:0"], octet.phase = "F", octet.stage = 1 : i64
// CHECK: octet.param "w1"
// CHECK: %[[B:.*]] = octet.add %arg0
// CHECK: return %[[B]]

// CHECK-LABEL: func.func @forward_backward_B1(%arg0: tensor<4xf32>) -> tensor<4xf32>
// CHECK-SAME: octet.inputs = ["forward_backward_F1:0"], octet.phase = "B", octet.stage = 1 : i64
// CHECK: octet.param "w1"
// CHECK: %[[SEED:.*]] = arith.constant dense<1.000000e+00>
// CHECK: %[[G1:.*]] = octet.add %[[SEED]], %arg0
// CHECK: octet.grad_accumulate %[[G1]] into "w1"
// CHECK: return %[[G1]]

// CHECK-LABEL: func.func @forward_backward_B0(%arg0: tensor<4xf32>, %arg1: tensor<4xf32>)
// CHECK-SAME: octet.inputs = ["forward_backward_B1:0", "forward_backward_F0:0"], octet.phase = "B", octet.stage = 0 : i64
// CHECK: octet.param "w0"
// CHECK: %[[G0:.*]] = octet.add %arg0, %arg1
// CHECK: octet.grad_accumulate %[[G0]] into "w0"
// CHECK: return
func.func @forward_backward(%x: tensor<4xf32>) -> tensor<4xf32> attributes {octet.num_stages = 2 : i64} {
  %w0 = octet.param "w0" {octet.stage = 0 : i64} : tensor<4xf32>
  %a = octet.add %x, %w0 {octet.stage = 0 : i64} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %w1 = octet.param "w1" {octet.stage = 1 : i64} : tensor<4xf32>
  %b = octet.add %a, %w1 {octet.stage = 1 : i64} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %seed = arith.constant dense<1.0> : tensor<4xf32>
  %g1 = octet.add %seed, %b {octet.stage = 1 : i64} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  octet.grad_accumulate %g1 into "w1" {octet.stage = 1 : i64} : tensor<4xf32>
  %g0 = octet.add %g1, %a {octet.stage = 0 : i64} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  octet.grad_accumulate %g0 into "w0" {octet.stage = 0 : i64} : tensor<4xf32>
  return %b : tensor<4xf32>
}

// -----

// One stage: nothing to cut.
// CHECK-LABEL: func.func @forward_backward(
// CHECK-NOT: octet.stage_functions
// CHECK-NOT: func.func @forward_backward_F0
func.func @forward_backward(%x: tensor<4xf32>) -> tensor<4xf32> {
  %a = octet.add %x, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %a : tensor<4xf32>
}

// -----

func.func @forward_backward(%x: tensor<4xf32>) -> tensor<4xf32> attributes {octet.num_stages = 2 : i64} {
  %a = octet.add %x, %x {octet.stage = 0 : i64} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  // expected-error@+1 {{has no octet.stage and no staged user: cannot place it in a pipeline stage}}
  %u = octet.add %a, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %a : tensor<4xf32>
}

// -----

func.func @forward_backward(%x: tensor<4xf32>) -> tensor<4xf32> attributes {octet.num_stages = 2 : i64} {
  // expected-error@+1 {{is used by forward_backward_F0, which runs before the function computing it: the stage tags do not describe a pipeline}}
  %a = octet.add %x, %x {octet.stage = 1 : i64} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %b = octet.add %a, %a {octet.stage = 0 : i64} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %b : tensor<4xf32>
}
