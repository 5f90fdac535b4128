"""Small YAML spaces the latency and DARTS tests profile and search in seconds."""

TINY = """\
name: tiny
resolution: {base: 32, multipliers: [0.75, 1.0]}
width: [0.5, 1.0]
act: relu
stem: {kernel: 3, stride: 2, channels: 16}
head: {channels: 64}
stages:
  - {block: mb, channels: 16, stride: 1, depth: [1, 2], kernel: [3, 5], expansion: [1, 3]}
  - {block: mb, channels: 24, stride: 2, depth: [1, 2], kernel: [3, 5], expansion: [3, 6], se: [0, 0.25]}
"""
