"""Hardware config texts shared by the hwsim tests."""

# A small single-core NPU: every field that has no default, nothing else.
EDGE = (
    "kind: npu\nname: t\nclock_mhz: 500\narray: {rows: 8, cols: 8}\nvector: {lanes: 8}\n"
    "sram: {size_kib: 64, bytes_per_cycle: 32}\ndram: {type: DDR4, bandwidth_gbps: 10, latency_ns: 50}\n"
)
