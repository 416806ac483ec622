// The DLPack ABI (https://dmlc.github.io/dlpack/latest/), written from its specification:
// the C structs two libraries exchange to share a tensor's memory without a copy. Only the
// fields and enumerators gradflow reads or writes are named; the layouts are the spec's, so
// the structs are binary compatible with any producer or consumer of DLPack 1.x.
//
// Ownership: a producer hands out one DLManagedTensor(Versioned) inside a PyCapsule named
// "dltensor" (legacy) or "dltensor_versioned". The consumer that takes it renames the capsule
// "used_dltensor" / "used_dltensor_versioned" and from then on owns it: when it no longer
// needs the memory it calls `deleter(self)` exactly once (from any thread), which frees the
// struct and releases the producer's storage. A capsule destroyed while still unconsumed calls
// the deleter itself. A versioned tensor whose major version differs from ours may only be
// released (through its deleter), never read.
#pragma once
#include <cstdint>

namespace gradflow::dlpack {

constexpr uint32_t kMajorVersion = 1;  // the struct layout below
constexpr uint32_t kMinorVersion = 0;  // the enumerators below are all in 1.0

struct DLPackVersion {
  uint32_t major;
  uint32_t minor;
};

// DLDevice.device_type codes.
enum DLDeviceType : int32_t { kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3, kDLCUDAManaged = 13 };

struct DLDevice {
  int32_t device_type;
  int32_t device_id;
};

// DLDataType.code values: the element kind, with `bits` its width and `lanes` the vector width.
enum DLDataTypeCode : uint8_t { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4,
                                kDLComplex = 5, kDLBool = 6 };

struct DLDataType {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
};

// Element (i0, i1, ...) lives at (char*)data + byte_offset + sum_d i_d * strides[d] * bits / 8.
// `strides` are in elements; NULL means compact row-major. `shape` has `ndim` entries (NULL
// allowed when ndim is 0).
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;
  uint64_t byte_offset;
};

// The legacy form (capsule "dltensor"): no version, no flags.
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

// DLManagedTensorVersioned.flags bits.
constexpr uint64_t kFlagReadOnly = uint64_t(1) << 0;  // the consumer must not write
constexpr uint64_t kFlagIsCopied = uint64_t(1) << 1;  // the producer made a copy for the consumer

// The versioned form (capsule "dltensor_versioned"). Fields up to `flags` keep their place in
// every future major version, so the deleter can always be found.
struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);
  uint64_t flags;
  DLTensor dl_tensor;
};

}  // namespace gradflow::dlpack
