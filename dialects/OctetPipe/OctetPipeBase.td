//===- OctetPipeBase.td - Pipeline/communication dialect base -*- tablegen -*-===//

#ifndef OCTET_DIALECT_OCTETPIPE_BASE_TD
#define OCTET_DIALECT_OCTETPIPE_BASE_TD

include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/OpBase.td"

def OctetPipe_Dialect : Dialect {
  let name = "octet_pipe";
  let cppNamespace = "::octet::pipe";
  let summary = "Pipeline schedules and asynchronous communication";
  let description = [{
    The `octet_pipe` dialect has two levels.

    **Schedules.** An `octet_pipe.schedule` holds, for each rank, the ordered
    actions that rank runs in one training step: forward (`F`), full
    backward (`B`), input-gradient backward (`I`), deferred weight-gradient
    backward (`W`) and an overlapped forward+backward pair (`F&B`), each
    naming a global stage and a micro-batch, together with the point-to-point
    sends and receives of activations and gradients between ranks.

    **Collectives.** Inside stage computations, `all_to_all` (MoE dispatch
    and combine), `all_reduce` and `reduce_scatter` work on tensors.

    **Expert parallelism.** `expert_dispatch` and `expert_combine` carry an
    MoE layer's routed rows to the ranks owning their experts and back, and
    `local_experts` (with its gradient `local_experts_grad`) selects a
    rank's share of an expert weight. `--octet-insert-expert-comm` writes
    them; unlike the collectives above they complete before they return,
    which is how the CPU executor runs them.

    Every communication op is asynchronous: it returns a `!octet_pipe.token`
    or an `!octet_pipe.async<T>` value and runs on a named stream. A token is
    consumed by exactly one `octet_pipe.wait` and an async value by exactly
    one `octet_pipe.await` in the same block, which is where the program
    blocks until the transfer is done. Passes place these waits so that
    communication overlaps computation.

    ```mlir
    octet_pipe.schedule "1f1b" ranks(2) stages(2) microbatches(2) {
      octet_pipe.rank 0 {
        octet_pipe.forward stage(0) mb(0)
        %a0 = octet_pipe.send activation stage(0) mb(0) to(1)
        octet_pipe.forward stage(0) mb(1)
        %a1 = octet_pipe.send activation stage(0) mb(1) to(1)
        %g0 = octet_pipe.recv gradient stage(1) mb(0) from(1)
        octet_pipe.wait %g0
        octet_pipe.backward stage(0) mb(0)
        %g1 = octet_pipe.recv gradient stage(1) mb(1) from(1)
        octet_pipe.wait %g1
        octet_pipe.backward stage(0) mb(1)
        octet_pipe.wait %a0, %a1
      }
      octet_pipe.rank 1 {
        %x0 = octet_pipe.recv activation stage(0) mb(0) from(0)
        octet_pipe.wait %x0
        octet_pipe.forward stage(1) mb(0)
        octet_pipe.backward stage(1) mb(0)
        %d0 = octet_pipe.send gradient stage(1) mb(0) to(0)
        %x1 = octet_pipe.recv activation stage(0) mb(1) from(0)
        octet_pipe.wait %x1
        octet_pipe.forward stage(1) mb(1)
        octet_pipe.backward stage(1) mb(1)
        %d1 = octet_pipe.send gradient stage(1) mb(1) to(0)
        octet_pipe.wait %d0, %d1
      }
    }
    ```
  }];
  let useDefaultTypePrinterParser = 1;
  let extraClassDeclaration = [{
  private:
    void registerTypes();
  public:
  }];
}

def OctetPipe_Stream : I32EnumAttr<"Stream",
    "the named stream an operation is issued on", [
      I32EnumAttrCase<"Compute", 0, "compute">,
      I32EnumAttrCase<"P2P", 1, "p2p">,
      I32EnumAttrCase<"Collective", 2, "collective">
    ]> {
  let cppNamespace = "::octet::pipe";
}

def OctetPipe_Payload : I32EnumAttr<"Payload",
    "what a point-to-point message carries", [
      I32EnumAttrCase<"Activation", 0, "activation">,
      I32EnumAttrCase<"Gradient", 1, "gradient">
    ]> {
  let cppNamespace = "::octet::pipe";
}

def OctetPipe_ProcessGroup : I32EnumAttr<"ProcessGroup",
    "the parallel dimension a collective runs over", [
      I32EnumAttrCase<"DP", 0, "dp">,
      I32EnumAttrCase<"EP", 1, "ep">,
      I32EnumAttrCase<"PP", 2, "pp">
    ]> {
  let cppNamespace = "::octet::pipe";
}

def OctetPipe_Reduction : I32EnumAttr<"Reduction",
    "the reduction of all_reduce and reduce_scatter", [
      I32EnumAttrCase<"Sum", 0, "sum">,
      I32EnumAttrCase<"Avg", 1, "avg">,
      I32EnumAttrCase<"Max", 2, "max">
    ]> {
  let cppNamespace = "::octet::pipe";
}

def OctetPipe_AllToAllMode : I32EnumAttr<"AllToAllMode",
    "direction of an expert-parallel all-to-all", [
      I32EnumAttrCase<"Dispatch", 0, "dispatch">,
      I32EnumAttrCase<"Combine", 1, "combine">
    ]> {
  let cppNamespace = "::octet::pipe";
}

def OctetPipe_WireFormat : I32EnumAttr<"WireFormat",
    "how the rows of an expert-parallel exchange travel", [
      I32EnumAttrCase<"F32", 0, "f32">,
      I32EnumAttrCase<"BF16", 1, "bf16">,
      I32EnumAttrCase<"E4M3", 2, "e4m3">,
      I32EnumAttrCase<"E5M2", 3, "e5m2">
    ]> {
  let cppNamespace = "::octet::pipe";
}

def OctetPipe_ScheduleKind : I32EnumAttr<"ScheduleKind",
    "pipeline schedules, by the name `octet_pipe.schedule` and the CLI use", [
      I32EnumAttrCase<"OneFOneB", 0, "1f1b">,
      I32EnumAttrCase<"ZB1P", 1, "zb1p">,
      I32EnumAttrCase<"Interleaved1F1B", 2, "interleaved-1f1b">,
      I32EnumAttrCase<"DualPipe", 3, "dualpipe">,
      I32EnumAttrCase<"DualPipeV", 4, "dualpipev">,
      I32EnumAttrCase<"Custom", 5, "custom">
    ]> {
  let cppNamespace = "::octet::pipe";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

def OctetPipe_TokenType : TypeDef<OctetPipe_Dialect, "Token"> {
  let mnemonic = "token";
  let summary = "Completion of an asynchronous operation without a result";
  let description = [{
    Returned by `send` and `recv`; consumed by exactly one `octet_pipe.wait`.

    ```mlir
    %t = octet_pipe.send activation stage(0) mb(3) to(1) on p2p
    octet_pipe.wait %t
    ```
  }];
}

def OctetPipe_AsyncType : TypeDef<OctetPipe_Dialect, "Async"> {
  let mnemonic = "async";
  let summary = "A value that becomes available when an asynchronous op completes";
  let description = [{
    Returned by the collectives; `octet_pipe.await` blocks until the
    transfer is complete and yields the value of type `T` (a ranked tensor or
    a quantized tensor).

    ```mlir
    !octet_pipe.async<tensor<1024x512xbf16>>
    ```
  }];
  let parameters = (ins "::mlir::Type":$valueType);
  let assemblyFormat = "`<` $valueType `>`";
}

#endif // OCTET_DIALECT_OCTETPIPE_BASE_TD
