// RUN: octet-opt %s --octet-insert-pipeline-comm="schedule=1f1b ranks=2 microbatches=2" | FileCheck %s
// RUN: octet-opt %s --octet-insert-pipeline-comm="schedule=dualpipev ranks=2 microbatches=4" | FileCheck %s --check-prefix=V
// RUN: octet-opt %s --octet-insert-pipeline-comm="schedule=dualpipe ranks=4 microbatches=8" | FileCheck %s --check-prefix=DP
// RUN: not octet-opt %s --octet-insert-pipeline-comm="schedule=gpipe" 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not octet-opt %s --octet-insert-pipeline-comm="schedule=dualpipe ranks=3 microbatches=6" 2>&1 | FileCheck %s --check-prefix=SIZES

// UNKNOWN: error: octet-insert-pipeline-comm: unknown schedule 'gpipe' (1f1b, zb1p, interleaved-1f1b, dualpipe, dualpipev)
// SIZES: error: octet-insert-pipeline-comm: {{.*}}even

// 1F1B on 2 ranks, 2 micro-batches. A forward sends its activation to the
// next stage's rank as soon as it ends; a receive is posted one action ahead
// and waited on just before the action that needs it; sends are waited on
// at the end of the step.
// CHECK-LABEL: octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(2) {
// CHECK-NEXT: octet_pipe.rank 0 {
// CHECK-NEXT:   octet_pipe.forward stage(0) mb(0)
// CHECK-NEXT:   %[[S0:.*]] = octet_pipe.send activation stage(0) mb(0) to(1)
// CHECK-NEXT:   octet_pipe.forward stage(0) mb(1)
// CHECK-NEXT:   %[[S1:.*]] = octet_pipe.send activation stage(0) mb(1) to(1)
// CHECK-NEXT:   %[[G0:.*]] = octet_pipe.recv gradient stage(1) mb(0) from(1)
// CHECK-NEXT:   octet_pipe.wait %[[G0]]
// CHECK-NEXT:   octet_pipe.backward stage(0) mb(0)
// CHECK-NEXT:   %[[G1:.*]] = octet_pipe.recv gradient stage(1) mb(1) from(1)
// CHECK-NEXT:   octet_pipe.wait %[[G1]]
// CHECK-NEXT:   octet_pipe.backward stage(0) mb(1)
// CHECK-NEXT:   octet_pipe.wait %[[S0]], %[[S1]]
// CHECK-NEXT: }
// CHECK-NEXT: octet_pipe.rank 1 {
// CHECK-NEXT:   %[[A0:.*]] = octet_pipe.recv activation stage(0) mb(0) from(0)
// CHECK-NEXT:   octet_pipe.wait %[[A0]]
// CHECK-NEXT:   octet_pipe.forward stage(1) mb(0)
// CHECK-NEXT:   octet_pipe.backward stage(1) mb(0)
// CHECK-NEXT:   %[[T0:.*]] = octet_pipe.send gradient stage(1) mb(0) to(0)
// CHECK-NEXT:   %[[A1:.*]] = octet_pipe.recv activation stage(0) mb(1) from(0)
// CHECK-NEXT:   octet_pipe.wait %[[A1]]
// CHECK-NEXT:   octet_pipe.forward stage(1) mb(1)
// CHECK-NEXT:   octet_pipe.backward stage(1) mb(1)
// CHECK-NEXT:   %[[T1:.*]] = octet_pipe.send gradient stage(1) mb(1) to(0)
// CHECK-NEXT:   octet_pipe.wait %[[T0]], %[[T1]]
// CHECK-NEXT: }

// DualPipeV: the V turns on rank 1 (stages 1 and 2 there: no transfer), and
// stage 2's activation comes back to rank 0 for stage 3. Overlapped F&B
// pairs receive both their inputs before they start.
// V-LABEL: octet_pipe.rank 0 {
// V: octet_pipe.recv activation stage(2) mb(0) from(1)
// V-LABEL: octet_pipe.rank 1 {
// V-NOT: activation stage(1)
// V: octet_pipe.forward stage(2) mb(0)
// V-NEXT: octet_pipe.send activation stage(2) mb(0) to(0)

// DualPipe on 4 ranks: copy 0 flows 0 -> 3, copy 1 (stages 4..7) 3 -> 0,
// with F&B pairs; the verifier has checked every channel's order.
// DP-LABEL: octet_pipe.schedule "dualpipe" ranks(4) stages(8) microbatches(8)
// DP: octet_pipe.rank 0 {
// DP: octet_pipe.forward stage(7) mb(0)
// DP: octet_pipe.overlapped forward
// DP: octet_pipe.rank 1 {
// DP: octet_pipe.rank 2 {
// DP: octet_pipe.rank 3 {
module {
}
