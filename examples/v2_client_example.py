"""A plain tritonclient script, as written for Triton, run against convd serve.

    convd serve --models examples &
    python3 examples/v2_client_example.py localhost:8080

(tests/v2/test_v2_client.py runs it against a live server.)
"""
import sys

import numpy as np
import tritonclient.http as httpclient

url = sys.argv[1] if len(sys.argv) > 1 else "localhost:8080"
client = httpclient.InferenceServerClient(url=url)
assert client.is_server_live() and client.is_server_ready()

meta = client.get_model_metadata("separable_classic")
print(meta["inputs"][0]["shape"], "->", meta["outputs"][0]["shape"])  # [-1, 3, 128, 128] -> [-1, 10, 128, 128]

x = np.random.default_rng(0).standard_normal((1, 3, 128, 128), dtype=np.float32)
inp = httpclient.InferInput("input", list(x.shape), "FP32")
inp.set_data_from_numpy(x, binary_data=True)  # or binary_data=False for JSON
out = httpclient.InferRequestedOutput("output", binary_data=True)
result = client.infer("separable_classic", [inp], outputs=[out])

y = result.as_numpy("output")
params = result.get_response()["parameters"]  # convd's own statistics
print(y.shape, y.dtype, "FLOPs:", params["convd_flops"], "compute ms:", round(params["convd_compute_ms"], 3))
