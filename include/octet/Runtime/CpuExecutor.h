//===- CpuExecutor.h - Runs a program with the CPU kernels ------*- C++ -*-===//
//
// The CPU backend: owns the state of a Program and runs its functions
// instruction by instruction with the reference kernels (CPUKernels.h,
// FP8Linear.h). The op table and the exact semantics of every op are in
// docs/program-format.md.
//
// State, all allocated when the executor is created (of a pipeline rank's,
// the part a Holding names):
// - one storage per buffer of the functions it runs: T for f32 and bf16
//   buffers (a bf16 buffer holds BF16-rounded values: every result written
//   to one is rounded), int64_t for i32 and i64 buffers; constants are
//   written once, at creation;
// - the FP32 master weight of every parameter (T);
// - for every trainable (not frozen) parameter, an FP32 gradient
//   accumulator (T) that octet.grad_accumulate adds into and
//   octet.adamw_step consumes and clears, and the AdamW moments as BF16 bit
//   patterns.
//
// T is float (the training backend; the only one that emulates the FP8 and
// BF16 precisions and runs AdamW) or double (the FP64 reference that
// gradient checks compare against).
//
// Creation validates every instruction of the functions it runs (known op,
// operand and result counts, dtypes, shapes, attributes); running
// validates what only the data can tell (ids, labels and expert indices in
// range, group sizes, the step).
// Every error names the function, the instruction index and the op.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_RUNTIME_CPUEXECUTOR_H
#define OCTET_RUNTIME_CPUEXECUTOR_H

#include "octet/Runtime/Program.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace octet::cpu {
class ScaledGemmEngine;
class DenseGemmEngine;
} // namespace octet::cpu

namespace octet::runtime {

/// The op names the CPU executor runs, sorted.
llvm::ArrayRef<llvm::StringRef> cpuExecutorOps();

/// Expert parallelism: how an executor reaches the other ranks of its
/// expert-parallel group, for the octet_pipe expert ops
/// (`expert_dispatch`, `expert_combine`, `local_experts`) that
/// --octet-insert-expert-comm writes: group rank g owns experts
/// [g E/G, (g+1) E/G) of every MoE layer, and rows travel to their
/// experts' owners and back.
template <typename T> class ExpertExchange {
public:
  /// What one rank sends another in one exchange.
  struct Message {
    std::string tag;            ///< The instruction exchanging.
    std::vector<uint8_t> bytes; ///< Rows in the op's wire format.
    std::vector<int64_t> sizes; ///< Rows per expert of the owner.
  };
  virtual ~ExpertExchange() = default;
  virtual int64_t getGroupSize() const = 0;
  virtual int64_t getGroupRank() const = 0;
  /// Sends send[g] to group rank g (itself included) and returns what every
  /// group rank sent this one, in group order. The ranks of a group run each
  /// instruction's exchanges in the same order, and an exchange pairs with
  /// the other ranks' exchanges for the same instruction (send[g].tag) of
  /// the same count; an error when a peer fails or does not come in time.
  virtual llvm::Expected<std::vector<Message>>
  allToAll(std::vector<Message> send) = 0;
};

template <typename T> class CpuExecutor {
public:
  /// A function argument: a view of the caller's data (row-major, one value
  /// per element of the argument buffer), which must outlive the run call.
  /// Integer buffers take int32 or int64 data, f32 and bf16 buffers T.
  class Argument {
  public:
    enum class Kind { Int32, Int64, Real };

    Argument(llvm::ArrayRef<int32_t> v)
        : kind(Kind::Int32), data(v.data()), count(v.size()) {}
    Argument(llvm::ArrayRef<int64_t> v)
        : kind(Kind::Int64), data(v.data()), count(v.size()) {}
    Argument(llvm::ArrayRef<T> v)
        : kind(Kind::Real), data(v.data()), count(v.size()) {}
    Argument(const std::vector<int32_t> &v)
        : Argument(llvm::ArrayRef<int32_t>(v)) {}
    Argument(const std::vector<int64_t> &v)
        : Argument(llvm::ArrayRef<int64_t>(v)) {}
    Argument(const std::vector<T> &v) : Argument(llvm::ArrayRef<T>(v)) {}

    /// A scalar held by the argument itself (`%lr`, `%step`).
    static Argument scalar(T v) {
      Argument a(llvm::ArrayRef<T>{});
      a.ownReal = v;
      a.ownsScalar = true;
      return a;
    }
    static Argument integer(int64_t v) {
      Argument a(llvm::ArrayRef<int64_t>{});
      a.ownInt = v;
      a.ownsScalar = true;
      return a;
    }

    Kind getKind() const { return kind; }
    size_t size() const { return ownsScalar ? 1 : count; }
    llvm::ArrayRef<int32_t> int32s() const {
      return {static_cast<const int32_t *>(data), count};
    }
    llvm::ArrayRef<int64_t> int64s() const {
      return ownsScalar ? llvm::ArrayRef<int64_t>(ownInt)
                        : llvm::ArrayRef<int64_t>(
                              static_cast<const int64_t *>(data), count);
    }
    llvm::ArrayRef<T> reals() const {
      return ownsScalar
                 ? llvm::ArrayRef<T>(ownReal)
                 : llvm::ArrayRef<T>(static_cast<const T *>(data), count);
    }

  private:
    Kind kind;
    const void *data;
    size_t count;
    bool ownsScalar = false;
    T ownReal = 0;
    int64_t ownInt = 0;
  };

  /// A result of a function: a copy of its buffer.
  struct Output {
    BufferType dtype = BufferType::F32;
    std::vector<int64_t> shape;
    std::vector<T> values;     ///< f32 and bf16 buffers.
    std::vector<int64_t> ints; ///< i32 and i64 buffers.
  };

  /// Elements [begin, end) of a parameter (end -1: to its end).
  struct Range {
    int64_t begin = 0, end = -1;
  };
  /// What an executor holds of the program: a pipeline rank's share of the
  /// parameters' state and its functions' buffers, allocated as such from
  /// the start, so that no rank ever holds a whole copy of a model it
  /// shares. By default (null members) all of it.
  struct Holding {
    /// Whether it holds parameter `name`'s state at all: its weights, its
    /// gradient and moments if trainable. One it does not hold is as after
    /// releaseParameters.
    std::function<bool(llvm::StringRef)> keeps;
    /// Of a trainable parameter, the elements its optimizer step updates
    /// and it keeps the AdamW moments of (std::nullopt: none, as after
    /// setOptimizerRanges and releaseUnownedMoments).
    std::function<std::optional<Range>(llvm::StringRef)> updates;
    /// Of a parameter it keeps, the elements whose weights and gradient it
    /// holds (null: all of every one). One held in part must be read only
    /// by octet_pipe.local_experts (an expert weight under expert
    /// parallelism, of which a rank holds its own experts), and it must
    /// update no element it does not hold; creation fails otherwise.
    std::function<Range(llvm::StringRef)> part;
    /// Whether it runs function `name`: only those are compiled, and only
    /// their buffers allocated (a pipeline rank runs its stages'); running
    /// another fails, naming it.
    std::function<bool(llvm::StringRef)> runs;
    /// Whether the values a function alone computes share memory by
    /// liveness (its MemoryPlan); false gives each its own storage, as a
    /// check that reuse changes nothing (octet-run --no-buffer-reuse).
    bool reuseBuffers = true;
  };

  /// Validates `program` for this backend and allocates its state, or the
  /// part `holding` names. Master weights start at zero: call
  /// initParameters or load a checkpoint.
  static llvm::Expected<CpuExecutor> create(Program program,
                                            const Holding &holding = {});

  CpuExecutor(CpuExecutor &&) noexcept;
  CpuExecutor &operator=(CpuExecutor &&) noexcept;
  ~CpuExecutor();

  const Program &getProgram() const;

  /// Initialises every master weight it holds as its ParameterInit says
  /// and clears the gradients and moments. Deterministic: parameter p
  /// draws from a splitmix64 stream seeded from `seed` and a hash of p's
  /// name (normal values by Box-Muller), so adding or renaming a parameter
  /// leaves the others unchanged, and every rank holding p initialises it
  /// alike.
  void initParameters(uint64_t seed);

  /// Clears every gradient accumulator (the start of a step).
  void zeroGradients();

  /// The state of parameter `name`: its master weight; its gradient
  /// accumulator and AdamW moments (BF16 bits), which frozen parameters do
  /// not have (nor, after releaseUnownedMoments, the parameters of other
  /// ranks' shards; nor any state after releaseParameters). std::nullopt
  /// when there is no such state.
  std::optional<llvm::MutableArrayRef<T>> masterWeight(llvm::StringRef name);
  std::optional<llvm::MutableArrayRef<T>> gradient(llvm::StringRef name);
  /// Elements [begin, end) of the parameter's master weight or gradient,
  /// when it holds all of them (it may hold a parameter in part:
  /// Holding::part).
  std::optional<llvm::MutableArrayRef<T>>
  masterWeight(llvm::StringRef name, int64_t begin, int64_t end);
  std::optional<llvm::MutableArrayRef<T>> gradient(llvm::StringRef name,
                                                   int64_t begin, int64_t end);
  /// The element masterWeight(name)[0] and gradient(name)[0] are of: 0, or
  /// of a parameter held in part the first it holds.
  int64_t getWeightOffset(llvm::StringRef name) const;
  std::optional<llvm::MutableArrayRef<uint16_t>>
  firstMoment(llvm::StringRef name);
  std::optional<llvm::MutableArrayRef<uint16_t>>
  secondMoment(llvm::StringRef name);

  /// Runs function `name` with one argument per function argument and
  /// returns copies of its result buffers.
  llvm::Expected<std::vector<Output>> run(llvm::StringRef name,
                                          llvm::ArrayRef<Argument> arguments);

  /// The expert-parallel group that the octet_pipe expert ops exchange
  /// through (it must outlive the executor's runs); null (the default)
  /// makes them fail, naming the op.
  void setExpertExchange(ExpertExchange<T> *exchange);

  /// ZeRO-1: octet.adamw_step updates only the parameters `owns` accepts
  /// (weights and moments); for the others it clears the gradient and
  /// leaves the state as it is. By default every parameter is updated.
  void setOptimizerShard(llvm::function_ref<bool(llvm::StringRef)> owns);
  /// The same, updating of each parameter `owns` accepts only the elements
  /// it gives (an expert weight's experts under expert parallelism).
  void setOptimizerRanges(
      llvm::function_ref<std::optional<Range>(llvm::StringRef)> owns);
  /// ZeRO-1's memory saving: frees the AdamW moments of the parameters
  /// this executor does not update (after setOptimizerShard), for which
  /// firstMoment and secondMoment then return std::nullopt; an update of
  /// one of them fails. Of a parameter it updates in part, it keeps that
  /// part's, which firstMoment then returns, starting at element
  /// getMomentOffset. Returns the bytes freed.
  int64_t releaseUnownedMoments();
  int64_t getMomentOffset(llvm::StringRef name) const;
  /// Pipeline ranks: frees the weights, gradient and moments of every
  /// parameter `keep` rejects (another rank's, which this one neither reads
  /// nor updates). masterWeight, gradient and the moments then return
  /// std::nullopt for it, and a function that reads its weights or
  /// accumulates its gradient fails, naming it. Returns the bytes freed.
  int64_t releaseParameters(llvm::function_ref<bool(llvm::StringRef)> keep);
  /// Bytes of AdamW moments (BF16) this executor holds.
  int64_t getMomentBytes() const;
  /// Bytes of master weights and of gradient accumulators it holds.
  int64_t getWeightBytes() const;
  int64_t getGradientBytes() const;
  /// Bytes of the buffers of the functions it runs (each value's storage:
  /// 4 bytes an f32 or bf16 element with float, 8 with double or an
  /// integer).
  int64_t getBufferBytes() const;

  /// Calls `fn` with the parameter's name after every octet.grad_accumulate,
  /// on the thread running the function, so that a gradient's reduction
  /// can start as soon as its last accumulation of the step is done. Null
  /// removes it.
  void setGradientCallback(std::function<void(llvm::StringRef)> fn);

  /// Runs the block-scaled GEMMs of the FP8 linears (dense and expert,
  /// forward and backward) on `engine`, which must outlive the executor's
  /// runs; null (the default) runs them here. Only the float executor
  /// computes FP8 linears.
  void setScaledGemmEngine(cpu::ScaledGemmEngine *engine);
  cpu::ScaledGemmEngine *getScaledGemmEngine() const;

  /// Runs the GEMMs of the BF16 and FP32 linears and batched products
  /// (forward and backward) on `engine` (same lifetime rule); null runs
  /// them here. Fused ops (attention, the MoE gate) and the grouped
  /// linears outside FP8 keep theirs. Only the float executor uses it.
  void setDenseGemmEngine(cpu::DenseGemmEngine *engine);
  cpu::DenseGemmEngine *getDenseGemmEngine() const;

  struct State;

private:
  explicit CpuExecutor(std::unique_ptr<State> state);
  std::unique_ptr<State> state;
};

extern template class CpuExecutor<float>;
extern template class CpuExecutor<double>;

} // namespace octet::runtime

#endif // OCTET_RUNTIME_CPUEXECUTOR_H
