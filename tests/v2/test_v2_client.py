"""The Open Inference Protocol against a live `convd serve`, driven by the
official tritonclient.http and checked against torch.

    .venv/bin/python tests/v2/test_v2_client.py [path/to/convd]

Starts `convd serve --port 0 --models examples` itself (from the repository
root); exits 1 on any failure.
"""
import os
import re
import subprocess
import sys
import time
import unittest

import numpy as np
import torch  # noqa: F401  (the reference; fails early when missing)
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import convd_torch  # noqa: E402

CONVD = os.environ.get("CONVD_BIN") or (sys.argv[1] if len(sys.argv) > 1 else "build/convd")
MODELS = ["atrous", "mobilenet_v1", "separable_classic", "standard_classic"]
SERVER = {}


def start_server():
    proc = subprocess.Popen([os.path.abspath(CONVD), "serve", "--port", "0", "--models", "examples"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 20
    for line in proc.stdout:
        m = re.search(r"listening on http://[^ ]*:(\d+)", line)
        if m:
            SERVER["proc"], SERVER["url"] = proc, "127.0.0.1:%s" % m.group(1)
            break
        if time.time() > deadline:
            break
    else:
        raise RuntimeError("convd serve exited before listening")
    client = httpclient.InferenceServerClient(SERVER["url"])
    while not client.is_server_ready():
        if time.time() > deadline:
            raise RuntimeError("convd serve never became ready")
        time.sleep(0.05)


_torch_models = {}


def reference(model, x):
    if model not in _torch_models:
        _torch_models[model] = convd_torch.load_model(os.path.join(ROOT, "examples", model))
    return convd_torch.reference_output(_torch_models[model], x)


def assert_close(tc, got, want):
    tc.assertEqual(got.shape, want.shape)
    tc.assertEqual(got.dtype, np.float32)
    tol = 1e-4 * max(float(np.abs(want).max()), 1e-30)
    err = float(np.abs(got.astype(np.float64) - want).max())
    tc.assertLessEqual(err, tol, "max |error| %g over tolerance %g" % (err, tol))


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


class V2Client(unittest.TestCase):
    def setUp(self):
        self.client = httpclient.InferenceServerClient(SERVER["url"])

    def tearDown(self):
        self.client.close()

    def infer(self, model, x, datatype="FP32", binary_in=True, binary_out=True, outputs=True, **kw):
        inp = httpclient.InferInput("input", list(x.shape), datatype)
        inp.set_data_from_numpy(x, binary_data=binary_in)
        outs = [httpclient.InferRequestedOutput("output", binary_data=binary_out)] if outputs else None
        return self.client.infer(model, [inp], outputs=outs, **kw)

    def test_server_live_ready_metadata(self):
        self.assertTrue(self.client.is_server_live())
        self.assertTrue(self.client.is_server_ready())
        meta = self.client.get_server_metadata()
        self.assertEqual(meta["name"], "convd")
        self.assertEqual(sorted(meta["extensions"]),
                         ["binary_tensor_data", "model_configuration", "model_repository", "statistics"])

    def test_model_metadata_and_config(self):
        for model in MODELS:
            self.assertTrue(self.client.is_model_ready(model))
            self.assertTrue(self.client.is_model_ready(model, model_version="1"))
            self.assertFalse(self.client.is_model_ready(model, model_version="2"))
            meta = self.client.get_model_metadata(model)
            self.assertEqual(meta["name"], model)
            self.assertEqual(meta["versions"], ["1"])
            (inp,), (out,) = meta["inputs"], meta["outputs"]
            self.assertEqual((inp["name"], inp["datatype"], out["name"], out["datatype"]),
                             ("input", "FP32", "output", "FP32"))
            self.assertEqual(inp["shape"][0], -1)
            x = rand([1] + inp["shape"][1:])
            want = reference(model, x)
            self.assertEqual(out["shape"], [-1] + list(want.shape[1:]))
            config = self.client.get_model_config(model)
            self.assertEqual(config["name"], model)
            self.assertEqual(config["input"][0]["dims"], inp["shape"])
            seq = convd_torch.load_model(os.path.join(ROOT, "examples", model))
            self.assertEqual(len(config["layers"]), len(seq))
            self.assertEqual(self.client.get_model_metadata(model, model_version="1")["name"], model)

    def test_infer_binary_every_model(self):
        for model in MODELS:
            shape = self.client.get_model_metadata(model)["inputs"][0]["shape"]
            x = rand([1] + shape[1:], seed=1)
            result = self.infer(model, x)
            assert_close(self, result.as_numpy("output"), reference(model, x))
            out = result.get_output("output")
            self.assertEqual(out["parameters"]["binary_data_size"], result.as_numpy("output").nbytes)
            params = result.get_response()["parameters"]
            self.assertGreater(params["convd_flops"], 0)
            self.assertIn("layers", params["convd_stats"])

    def test_infer_json_in_and_out(self):
        x = rand((1, 3, 64, 64), seed=2)
        result = self.infer("atrous", x, binary_in=False, binary_out=False, request_id="req-7")
        response = result.get_response()
        self.assertEqual(response["id"], "req-7")
        self.assertIn("data", response["outputs"][0])
        assert_close(self, result.as_numpy("output"), reference("atrous", x))

    def test_infer_mixed_modes_and_default_outputs(self):
        x = rand((2, 3, 128, 128), seed=3)  # batch 2: the batch dimension is dynamic
        want = reference("separable_classic", x)
        assert_close(self, self.infer("separable_classic", x, binary_in=False, binary_out=True).as_numpy("output"), want)
        assert_close(self, self.infer("separable_classic", x, binary_in=True, binary_out=False).as_numpy("output"), want)
        # no outputs named: the client asks for binary_data_output at request level
        assert_close(self, self.infer("separable_classic", x, outputs=False).as_numpy("output"), want)

    def test_infer_other_datatypes(self):
        x64 = rand((1, 3, 64, 64), seed=4).astype(np.float64)
        want = reference("atrous", x64.astype(np.float32))
        for binary in (True, False):
            assert_close(self, self.infer("atrous", x64, "FP64", binary_in=binary).as_numpy("output"), want)
        x16 = rand((1, 3, 64, 64), seed=5).astype(np.float16)
        assert_close(self, self.infer("atrous", x16, "FP16").as_numpy("output"),
                     reference("atrous", x16.astype(np.float32)))
        xi = np.random.default_rng(6).integers(-100, 100, (1, 3, 64, 64)).astype(np.int32)
        for binary in (True, False):
            assert_close(self, self.infer("atrous", xi, "INT32", binary_in=binary).as_numpy("output"),
                         reference("atrous", xi.astype(np.float32)))
        big = np.full((1, 3, 64, 64), 2 ** 24 + 1, dtype=np.int64)
        with self.assertRaises(InferenceServerException) as cm:
            self.infer("atrous", big, "INT64")
        self.assertEqual(cm.exception.status(), "400")
        self.assertIn("2^24", cm.exception.message())

    def test_infer_compressed_requests(self):
        x = rand((1, 3, 64, 64), seed=7)
        want = reference("atrous", x)
        for algo in ("gzip", "deflate"):
            for binary in (True, False):
                result = self.infer("atrous", x, binary_in=binary, request_compression_algorithm=algo)
                assert_close(self, result.as_numpy("output"), want)

    def test_async_infer_in_flight(self):
        client = httpclient.InferenceServerClient(SERVER["url"], concurrency=6)
        try:
            xs = [rand((1, 3, 64, 64), seed=100 + i) for i in range(12)]
            pending = []
            for x in xs:
                inp = httpclient.InferInput("input", list(x.shape), "FP32")
                inp.set_data_from_numpy(x, binary_data=True)
                pending.append(client.async_infer("atrous", [inp]))
            for x, p in zip(xs, pending):
                assert_close(self, p.get_result().as_numpy("output"), reference("atrous", x))
        finally:
            client.close()

    def test_statistics(self):
        before = self.client.get_inference_statistics("standard_classic")["model_stats"][0]
        x = rand((1, 3, 128, 128), seed=8)
        for _ in range(3):
            self.infer("standard_classic", x)
        with self.assertRaises(InferenceServerException):
            self.infer("standard_classic", rand((1, 4, 128, 128)))
        after = self.client.get_inference_statistics("standard_classic")["model_stats"][0]
        self.assertEqual((after["name"], after["version"]), ("standard_classic", "1"))
        s0, s1 = before["inference_stats"], after["inference_stats"]
        self.assertEqual(s1["success"]["count"] - s0["success"]["count"], 3)
        self.assertEqual(s1["fail"]["count"] - s0["fail"]["count"], 1)
        for key in ("success", "queue", "compute_input", "compute_infer", "compute_output"):
            self.assertGreater(int(s1[key]["ns"]), int(s0[key]["ns"]) if key != "queue" else -1)
        self.assertEqual(after["execution_count"] - before["execution_count"], 3)
        self.assertGreater(after["last_inference"], 0)
        every = self.client.get_inference_statistics()["model_stats"]
        self.assertEqual(sorted(m["name"] for m in every), MODELS)

    def test_load_unload(self):
        model = "mobilenet_v1"
        index = {m["name"]: m for m in self.client.get_model_repository_index()}
        self.assertEqual(index[model]["state"], "READY")
        self.client.unload_model(model)
        self.assertFalse(self.client.is_model_ready(model))
        index = {m["name"]: m for m in self.client.get_model_repository_index()}
        self.assertEqual(index[model]["state"], "UNAVAILABLE")
        with self.assertRaises(InferenceServerException) as cm:
            self.infer(model, rand((1, 3, 224, 224)))
        self.assertEqual(cm.exception.status(), "404")
        self.client.load_model(model)
        deadline = time.time() + 20
        while not self.client.is_model_ready(model) and time.time() < deadline:
            time.sleep(0.05)
        self.assertTrue(self.client.is_model_ready(model))
        with self.assertRaises(InferenceServerException) as cm:
            self.client.load_model("no_such_model")
        self.assertEqual(cm.exception.status(), "400")

    def test_errors(self):
        with self.assertRaises(InferenceServerException) as cm:
            self.client.get_model_metadata("no_such_model")
        self.assertEqual(cm.exception.status(), "404")
        self.assertIn("no_such_model", cm.exception.message())
        self.assertFalse(self.client.is_model_ready("no_such_model"))
        with self.assertRaises(InferenceServerException) as cm:
            self.infer("no_such_model", rand((1, 3, 8, 8)))
        self.assertEqual(cm.exception.status(), "404")
        for bad in [(1, 4, 128, 128), (1, 3, 64, 64), (3, 128, 128)]:
            with self.assertRaises(InferenceServerException) as cm:
                self.infer("separable_classic", rand(bad))
            self.assertEqual(cm.exception.status(), "400")
            self.assertIn("shape", cm.exception.message())

    def test_readme_example(self):
        out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "v2_client_example.py"), SERVER["url"]],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("(1, 10, 128, 128) float32", out.stdout)


if __name__ == "__main__":
    start_server()
    try:
        result = unittest.main(argv=[sys.argv[0], "-v"], exit=False).result
    finally:
        SERVER["proc"].terminate()
        SERVER["proc"].wait(10)
    sys.exit(0 if result.wasSuccessful() else 1)
