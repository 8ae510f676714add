"""Lowering of per-op workloads onto a hardware target: closed-form costs per tile, per target."""
