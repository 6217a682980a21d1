"""Accelerator presets: dense peak throughput, HBM capacity and bandwidth, with their sources.

Re-exported by :mod:`chinplan.costs` (``chinplan.HARDWARE``, ``chinplan.H100_SXM``, ...); the
figures and what each was checked against are in docs/HARDWARE.md.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class Hardware(NamedTuple):
    """Dense peak throughput of one accelerator, in FLOP/s (or OP/s for int8).

    All leaves are numbers so a ``Hardware`` is a pytree; the name lives in
    :data:`HARDWARE`. A precision the chip does not support is ``nan``.

    Attributes:
      bf16: dense bf16 tensor-core peak.
      fp16: dense fp16 tensor-core peak.
      fp8: dense fp8 tensor-core peak (``nan`` if unsupported).
      int8: dense int8 tensor-core peak, OP/s.
      memory_bytes: HBM capacity.
      memory_bandwidth: HBM bandwidth, bytes/s.
    """

    bf16: float
    fp16: float
    fp8: float
    int8: float
    memory_bytes: float
    memory_bandwidth: float

    def peak(self, precision: str = "bf16") -> float:
        """Peak FLOP/s at ``precision`` (one of ``bf16``, ``fp16``, ``fp8``, ``int8``)."""
        if precision not in ("bf16", "fp16", "fp8", "int8"):
            raise ValueError(f"precision must be one of bf16, fp16, fp8, int8; got {precision!r}")
        value = getattr(self, precision)
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"precision {precision!r} is not supported by this hardware")
        return value


#: NVIDIA A100 SXM 80GB. Source: NVIDIA A100 Tensor Core GPU datasheet (2021): BF16/FP16
#: 312 TFLOPS, INT8 624 TOPS dense (twice that with structured sparsity); no FP8;
#: 80 GB HBM2e at 2,039 GB/s.
A100 = Hardware(bf16=312e12, fp16=312e12, fp8=float("nan"), int8=624e12, memory_bytes=80e9, memory_bandwidth=2.039e12)
#: NVIDIA H100 SXM5 80GB. Source: NVIDIA H100 Tensor Core GPU datasheet (2023): BF16/FP16
#: 1,979 TFLOPS and FP8/INT8 3,958 with sparsity, i.e. 989 (989.4) and 1,979 dense;
#: 80 GB HBM3 at 3.35 TB/s.
H100_SXM = Hardware(bf16=989e12, fp16=989e12, fp8=1979e12, int8=1979e12, memory_bytes=80e9, memory_bandwidth=3.35e12)
#: NVIDIA H200 SXM 141GB. Source: NVIDIA H200 Tensor Core GPU datasheet (2024): same tensor
#: cores as the H100 SXM (BF16 989, FP8 1,979, INT8 1,979 dense TFLOPS/TOPS); 141 GB HBM3e
#: at 4.8 TB/s.
H200 = Hardware(bf16=989e12, fp16=989e12, fp8=1979e12, int8=1979e12, memory_bytes=141e9, memory_bandwidth=4.8e12)

_NAN = float("nan")
#: NVIDIA A100 SXM 40GB: the A100's tensor cores (above) with 40 GB HBM2 at 1,555 GB/s.
A100_40GB = A100._replace(memory_bytes=40e9, memory_bandwidth=1.555e12)
#: NVIDIA H100 PCIe 80GB. Source: NVIDIA H100 datasheet (2023), PCIe column: BF16/FP16 1,513
#: and FP8/INT8 3,026 TFLOPS/TOPS with sparsity, i.e. 756 and 1,513 dense; 80 GB HBM2e at 2 TB/s.
H100_PCIE = Hardware(bf16=756e12, fp16=756e12, fp8=1513e12, int8=1513e12, memory_bytes=80e9, memory_bandwidth=2.0e12)
#: NVIDIA B200 (HGX/DGX B200, per GPU). Source: NVIDIA DGX B200 datasheet (2024): 72 PFLOPS FP8
#: with sparsity for 8 GPUs, i.e. 4.5 PFLOPS FP8/INT8 and 2.25 PFLOPS BF16/FP16 dense per GPU;
#: 1,440 GB HBM3e and 64 TB/s for 8 GPUs, i.e. 180 GB at 8 TB/s.
B200 = Hardware(bf16=2.25e15, fp16=2.25e15, fp8=4.5e15, int8=4.5e15, memory_bytes=180e9, memory_bandwidth=8e12)
#: NVIDIA GB200 (one Blackwell GPU of a GB200 NVL72). Source: NVIDIA GB200 NVL72 datasheet
#: (2024): 720 PFLOPS FP8 and 360 PFLOPS BF16 with sparsity for 72 GPUs, i.e. 5 PFLOPS FP8/INT8
#: and 2.5 PFLOPS BF16/FP16 dense per GPU; 13.4 TB HBM3e and 576 TB/s, i.e. 186 GB at 8 TB/s.
GB200 = Hardware(bf16=2.5e15, fp16=2.5e15, fp8=5e15, int8=5e15, memory_bytes=186e9, memory_bandwidth=8e12)
#: AMD Instinct MI300X. Source: AMD Instinct MI300X data sheet (2023): BF16/FP16 1,307.4 TFLOPS,
#: FP8 2,614.9 TFLOPS, INT8 2,614.9 TOPS dense; 192 GB HBM3 at 5.3 TB/s.
MI300X = Hardware(bf16=1307.4e12, fp16=1307.4e12, fp8=2614.9e12, int8=2614.9e12, memory_bytes=192e9, memory_bandwidth=5.3e12)
#: AMD Instinct MI325X. Source: AMD Instinct MI325X data sheet (2024): the MI300X's compute
#: (BF16 1,307.4, FP8 2,614.9 dense); 256 GB HBM3E at 6 TB/s.
MI325X = MI300X._replace(memory_bytes=256e9, memory_bandwidth=6.0e12)
#: Google Cloud TPU v5e (per chip). Source: Cloud TPU documentation, "TPU v5e"
#: (https://cloud.google.com/tpu/docs/v5e): 197 TFLOPS BF16, 393 TOPS INT8; no FP16 or FP8 peak
#: listed; 16 GB HBM2 at 819 GB/s.
TPU_V5E = Hardware(bf16=197e12, fp16=_NAN, fp8=_NAN, int8=393e12, memory_bytes=16e9, memory_bandwidth=819e9)
#: Google Cloud TPU v5p (per chip). Source: Cloud TPU documentation, "TPU v5p"
#: (https://cloud.google.com/tpu/docs/v5p): 459 TFLOPS BF16 and 459 FP8; 95 GB HBM2e at
#: 2,765 GB/s. The 918 TOPS INT8 is not on that page (unverified).
TPU_V5P = Hardware(bf16=459e12, fp16=_NAN, fp8=459e12, int8=918e12, memory_bytes=95e9, memory_bandwidth=2.765e12)
#: Google Cloud TPU v6e, Trillium (per chip). Source: Cloud TPU documentation, "TPU v6e"
#: (https://cloud.google.com/tpu/docs/v6e): 918 TFLOPS BF16, 1,836 TOPS INT8; 32 GB HBM at
#: 1,638 GB/s.
TPU_V6E = Hardware(bf16=918e12, fp16=_NAN, fp8=_NAN, int8=1836e12, memory_bytes=32e9, memory_bandwidth=1.638e12)

class UnknownHardwareError(KeyError, ValueError):
    """An unknown hardware preset name: a ``KeyError`` (dict lookup) that is also a ``ValueError``."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class _Presets(dict):
    """A dict of hardware presets, looked up case-insensitively (``HARDWARE["A100"]``); a
    missing name raises a message listing the valid names."""

    def __missing__(self, name):
        canonical = hardware_name(name) if isinstance(name, str) else None
        if canonical is not None:
            return self[canonical]
        raise UnknownHardwareError(f"unknown hardware {name!r}; choose from {', '.join(sorted(self))} (any case), "
                                   "or give another chip's peak_flops (and memory_bandwidth for roofline decoding)")

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.strip().lower())


#: Accelerator presets by name (dense peaks; the sources are in each constant's comment and
#: ``chinplan hardware --sources``). Names are case-insensitive. ``a100`` is an alias of
#: ``a100-80gb`` and ``h100`` and ``h100-80gb`` of ``h100-sxm`` (the SXM5 80GB part, the one cloud H100
#: instances use): :data:`HARDWARE_ALIASES`.
HARDWARE = _Presets({
    "a100": A100, "a100-40gb": A100_40GB, "a100-80gb": A100,
    "h100": H100_SXM, "h100-sxm": H100_SXM, "h100-80gb": H100_SXM, "h100-pcie": H100_PCIE, "h200": H200,
    "b200": B200, "gb200": GB200, "mi300x": MI300X, "mi325x": MI325X,
    "tpu-v5e": TPU_V5E, "tpu-v5p": TPU_V5P, "tpu-v6e": TPU_V6E,
})  # fmt: skip
#: Preset names that are another name's alias.
HARDWARE_ALIASES = {"a100": "a100-80gb", "h100": "h100-sxm", "h100-80gb": "h100-sxm"}
#: Where each preset's figures come from (the alias targets; an alias shares its target's).
HARDWARE_SOURCES = {
    "a100-40gb": "NVIDIA A100 Tensor Core GPU datasheet (2021), SXM 40GB",
    "a100-80gb": "NVIDIA A100 Tensor Core GPU datasheet (2021), SXM 80GB",
    "h100-sxm": "NVIDIA H100 Tensor Core GPU datasheet (2023), SXM5 80GB; dense = half the sparsity figure",
    "h100-pcie": "NVIDIA H100 Tensor Core GPU datasheet (2023), PCIe 80GB; dense = half the sparsity figure",
    "h200": "NVIDIA H200 Tensor Core GPU datasheet (2024), SXM 141GB",
    "b200": "NVIDIA DGX B200 datasheet (2024), per GPU of 8; dense = half the sparsity figure",
    "gb200": "NVIDIA GB200 NVL72 datasheet (2024), per GPU of 72; dense = half the sparsity figure",
    "mi300x": "AMD Instinct MI300X data sheet (2023); int8 unverified",
    "mi325x": "AMD Instinct MI325X data sheet (2024)",
    "tpu-v5e": "Google Cloud TPU documentation, TPU v5e (per chip), cloud.google.com/tpu/docs/v5e",
    "tpu-v5p": "Google Cloud TPU documentation, TPU v5p (per chip), cloud.google.com/tpu/docs/v5p; int8 unverified",
    "tpu-v6e": "Google Cloud TPU documentation, TPU v6e Trillium (per chip), cloud.google.com/tpu/docs/v6e",
}


def hardware_name(name: str) -> str | None:
    """The preset key of ``name`` (``"A100"`` -> ``"a100"``), or ``None`` if there is none."""
    key = str(name).strip().lower()
    return key if dict.__contains__(HARDWARE, key) else None
