//===- GraphBuilder.h - Forward graph of a DeepSeek-V3 model ----*- C++ -*-===//
//
// Builds the forward training graph of a ModelConfig in the `octet` dialect,
// with the structure and parameter names of examples/tiny-moe/model.mlir:
//
//   func.func @forward(%ids: tensor<B x (S+D) x i32>,
//                      %labels: tensor<B x (S+D) x i32>) -> tensor<f32>
//
// B is the micro-batch, S the sequence length and D the multi-token
// prediction depth (num_nextn_predict_layers). `labels[b, i]` is the token
// after `ids[b, i]`. The main model reads ids[:, 0:S] and is scored on
// labels[:, 0:S]; MTP module k (1-based) embeds ids[:, k:k+S] and is scored on
// labels[:, k:k+S], the token k+1 ahead of each main position. So every
// position of every depth has a real target, and the caller supplies each
// sequence with D extra tokens instead of dropping the last D positions. With
// D = 0 the inputs are B x S.
//
// The loss is main + mtp_loss_weight / D * sum of the MTP losses.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_FRONTENDS_GRAPHBUILDER_H
#define OCTET_FRONTENDS_GRAPHBUILDER_H

#include "octet/Frontends/ModelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace mlir {
class MLIRContext;
} // namespace mlir

namespace octet {

enum class ActivationType { F32, BF16 };

struct GraphOptions {
  /// Sequences per micro-batch.
  int64_t batch = 1;
  /// Tokens per sequence of the main model.
  int64_t sequenceLength = 64;
  /// Element type of activations and of the matmul weights. Norm weights,
  /// the router and its correction bias stay f32.
  ActivationType dtype = ActivationType::F32;
  /// Weight of the MTP losses (DeepSeek-V3: 0.3, later 0.1).
  double mtpLossWeight = 0.3;
  std::string functionName = "forward";
  /// Decoder layers of each pipeline stage (chunk), first to last; empty:
  /// one stage. Ops are tagged `octet.stage` with their chunk: the
  /// embedding with the first, the final norm, head and MTP modules with
  /// the last; the function gets `octet.num_stages`.
  std::vector<int64_t> stageLayers;
};

/// Builds and verifies the module holding the forward function. Returns
/// null after reporting diagnostics on the context when the graph does not
/// verify (which a ModelConfig that parsed should never cause).
mlir::OwningOpRef<mlir::ModuleOp>
buildForwardGraph(mlir::MLIRContext &context, const ModelConfig &model,
                  const GraphOptions &options);

} // namespace octet

#endif // OCTET_FRONTENDS_GRAPHBUILDER_H
