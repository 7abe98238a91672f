"""Real moving parts for integration tests, the demo and benchmarks.

- `modelserver`: a KServe ModelServer process (the `kserve` package) serving a small
  scoring model that can be told to fail a share of requests or answer slowly.
- `prometheus`: a real Prometheus server (Debian's `prometheus`) on 127.0.0.1 with a
  config written by the test.
- `load`: a bounded load driver that plays the mesh's part: it sends requests to the
  model servers, split by weight, and exports `istio_requests_total` with response
  codes, because the KServe model server has no per-status counter.
"""
