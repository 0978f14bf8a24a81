#!/usr/bin/env python3
"""Tests of launch/bench/scaling_model.py and what it reads: the trace's run facts and gradient
timeline from a real 2-rank run, the bucket layout against the Reducer's own, the alpha-beta fit,
the overlap simulation against hand-computed timelines, and bench_collectives end to end.

  DT_TEST_BINARY=build/launch/dist_train DT_TEST_BENCH=build/launch/bench_collectives \
    python3 tests/launch/test_scaling_model.py
"""
import collections, json, os, random, subprocess, sys, tempfile, unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "launch", "bench"))
import scaling_model as sm  # noqa: E402

MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
MPIRUN = ["mpirun", "--oversubscribe", "-np", "2", "--mca", "btl", "self,vader"]


def run(cmd):
    p = subprocess.run(cmd, env=MPI_ENV, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


class TraceOfATwoRankRun(unittest.TestCase):
    """One real 2-rank SyncBN run of resnet9 (26 MB of gradients) in 12 MB buckets: a first bucket
    of at most 1 MB, then several; shared by the tests below."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        d = cls.dir.name
        cls.steps = 7
        rc, out, err = run(MPIRUN + [os.environ["DT_TEST_BINARY"], "--synthetic", "400", "--model", "resnet9",
                                     "--batch-size", "4", "--device", "cpu", "--threads", "1",
                                     "--max-steps", str(cls.steps), "--eval-every", "0", "--bucket-mb", "12",
                                     "--log-dir", d, "--checkpoint-dir", d, "--trace", d + "/trace.json"])
        if rc != 0:
            raise AssertionError(f"dist_train failed ({rc}):\n{out}\n{err}")
        with open(d + "/trace.json") as f:
            cls.trace = json.load(f)
        cls.facts = cls.trace["otherData"]
        cls.log = out + err

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def test_facts_describe_the_run(self):
        f = self.facts
        self.assertEqual((f["model"], f["world_size"], f["batch_per_rank"], f["sync_bn_group"]),
                         ("resnet9", 2, 4, 2))
        total = sum(p["numel"] for p in f["parameters"])
        self.assertIn(f"model resnet9 ({total} parameters)", self.log)
        # Page's ResNet-9: prep, layer1 and its two residual convolutions, layer2, layer3 and its two.
        self.assertEqual([b["name"] for b in f["batch_norm_layers"]],
                         ["prep.bn", "layer1.bn", "layer1.res1.bn", "layer1.res2.bn", "layer2.bn",
                          "layer3.bn", "layer3.res1.bn", "layer3.res2.bn"])
        names = {p["name"] for p in f["parameters"]}
        for layer in f["batch_norm_layers"]:
            self.assertIn(layer["name"] + ".weight", names)

    def test_plan_is_the_reducers_layout(self):
        f = self.facts
        plan = sm.plan_buckets(f["parameters"], f["bucket_mb"], f["first_bucket_mb"])
        self.assertGreater(len(plan), 2)  # 26 MB in 12 MB buckets
        self.assertLessEqual(sm.bucket_elements(f["parameters"], plan[0]) * 4, 1024 * 1024)
        self.assertEqual([sm.bucket_elements(f["parameters"], b) for b in plan], f["buckets"])

    def test_every_gradient_and_sync_bn_collective_is_traced(self):
        ev = [e for e in self.trace["traceEvents"] if e["ph"] != "M"]
        grads = collections.Counter((e["pid"], e["args"]["step"]) for e in ev if e.get("cat") == "gradients")
        syncs = collections.Counter((e["pid"], e["args"]["step"]) for e in ev if e.get("cat") == "sync-bn")
        n_params, n_bn = len(self.facts["parameters"]), len(self.facts["batch_norm_layers"])
        for rank in (0, 1):
            for step in range(1, self.steps + 1):
                self.assertEqual(grads[(rank, step)], n_params, (rank, step))
                self.assertEqual(syncs[(rank, step)], 2 * n_bn, (rank, step))
        # Each gradient is complete inside its step's backward.
        backward = {(e["pid"], e["args"]["step"]): (e["ts"], e["ts"] + e["dur"])
                    for e in ev if e["name"] == "backward"}
        for e in ev:
            if e.get("cat") == "gradients":
                b0, b1 = backward[(e["pid"], e["args"]["step"])]
                self.assertTrue(b0 <= e["ts"] <= b1, e)

    def test_profile_takes_the_sync_bn_collectives_out_of_compute(self):
        prof = sm.load_profile([self.dir.name + "/trace.json"])
        self.assertGreater(prof.sync_bn_ms["forward"] + prof.sync_bn_ms["backward"], 0)
        self.assertGreater(prof.phases_ms["backward"], 0)
        fractions = list(prof.ready_fraction.values())
        self.assertTrue(all(0 <= x <= 1 for x in fractions))
        # The last layer's gradients come first in backward, the first layer's last.
        names = [p["name"] for p in self.facts["parameters"]]
        self.assertLess(prof.ready_fraction[names.index("fc.weight")],
                        prof.ready_fraction[names.index("prep.conv.weight")])


class AlphaBetaFit(unittest.TestCase):
    def test_recovers_alpha_and_beta(self):
        rng = random.Random()
        for _ in range(5):
            alpha, beta = rng.uniform(0.5, 50), rng.uniform(1e-5, 1e-2)
            points = [(b, alpha + beta * b) for b in (4, 64, 512, 4096, 32768, 262144, 1048576)]
            fit = sm.fit_alpha_beta(points)
            self.assertAlmostEqual(fit.alpha_us / alpha, 1, places=6)
            self.assertAlmostEqual(fit.beta_us_per_byte / beta, 1, places=6)


def toy_profile(backward_ms, ready, bn_weight_ready=()):
    """Two float32 parameters of 1000 elements per bucket entry; `ready` their completion fractions."""
    params = [{"name": f"p{i}", "numel": 1000, "element_bytes": 4} for i in range(len(ready))]
    bn = []
    for j, at in enumerate(bn_weight_ready):
        params.append({"name": f"bn{j}.weight", "numel": 4, "element_bytes": 4})
        bn.append({"name": f"bn{j}", "channels": 4})
    ready_fraction = {i: r for i, r in enumerate(ready)}
    for j, at in enumerate(bn_weight_ready):
        ready_fraction[len(ready) + j] = at
    facts = {"parameters": params, "batch_norm_layers": bn, "device": "cpu", "batch_per_rank": 512, "bucket_mb": 4000 * 1.0001 / 1024 / 1024,
             "first_bucket_mb": 4000 * 1.0001 / 1024 / 1024}
    return sm.Profile(facts, {"data": 0.0, "forward": 1.0, "backward": backward_ms, "optimizer": 0.0},
                      ready_fraction, {"forward": 0.0, "backward": 0.0})


def constant(us):
    return lambda nbytes: us


class OverlapSimulation(unittest.TestCase):
    def transports(self, alone, bucket_us=3000.0, sync_us=0.0):
        return {"world": sm.Transport(constant(0.0), constant(0.0), constant(bucket_us), alone),
                "sync_bn": sm.Transport(constant(sync_us), constant(sync_us), None, False)}

    def test_buckets_hide_behind_backward_when_the_transport_progresses_alone(self):
        # One parameter per bucket (4000 B caps); backward runs the parameters in reverse, so
        # bucket 0 is p1 (ready at 0.5 of 10 ms), bucket 1 is p0 (ready at 1.0).
        p = toy_profile(10.0, [1.0, 0.5])
        self.assertEqual(len(sm.plan_buckets(p.parameters(), p.facts["bucket_mb"], p.facts["first_bucket_mb"])), 2)
        got = sm.predict_step(p, self.transports(True), 2, 0)
        self.assertAlmostEqual(got["buckets_exposed"], 3.0)  # 5 -> 8, then 10 -> 13
        got = sm.predict_step(p, self.transports(False), 2, 0)
        self.assertAlmostEqual(got["buckets_exposed"], 6.0)  # both after backward: 10 -> 16
        # A bucket still running when the next is ready delays it.
        got = sm.predict_step(toy_profile(10.0, [1.0, 0.9]), self.transports(True), 2, 0)
        self.assertAlmostEqual(got["buckets_exposed"], 5.0)  # 9 -> 12, 12 -> 15

    def test_sync_bn_collectives_lengthen_backward_and_delay_later_buckets(self):
        # One BatchNorm whose backward collective (2 ms) comes at 0.3 of backward, before every
        # bucket: they shift by 2 ms, and so does backward's end. Its weight (16 B) is bucket 0:
        # 5 -> 8; p1 (ready 7) waits for it: 8 -> 11; p0: 12 -> 15, against backward's end at 12.
        p = toy_profile(10.0, [1.0, 0.5], bn_weight_ready=[0.3])
        got = sm.predict_step(p, self.transports(True, bucket_us=3000.0, sync_us=2000.0), 2, 2)
        self.assertAlmostEqual(got["sync_bn"], 4.0)  # forward and backward, 2 ms each
        self.assertAlmostEqual(got["buckets_exposed"], 3.0)
        self.assertAlmostEqual(got["step"], 1.0 + 10.0 + 4.0 + 3.0)


class Projection(unittest.TestCase):
    def test_grouped_sync_bn_sits_between_per_rank_and_world(self):
        p = toy_profile(4.0, [1.0, 0.5], bn_weight_ready=[0.2, 0.6, 0.9])
        p.facts["bucket_mb"] = p.facts["first_bucket_mb"] = 25.0
        rows = sm.project({"resnet14": p})
        by = {(r["gpus"], r["mode"]): r["efficiency"] for r in rows}
        for n in (32, 128):
            self.assertGreater(by[(n, "per-rank BN")], by[(n, "SyncBN in a node")])
            self.assertGreater(by[(n, "SyncBN in a node")], by[(n, "SyncBN world")])
        for e in by.values():
            self.assertTrue(0 < e <= 1)


    def test_a_gpu_trace_is_its_own_step_and_scales_with_the_batch(self):
        p = toy_profile(4.0, [1.0, 0.5], bn_weight_ready=[0.2, 0.6])
        p.facts.update(device="cuda:0", batch_per_rank=128)
        step, _, same = sm.gpu_step("mine", p)
        self.assertAlmostEqual(step, p.compute_ms)
        step, _, double = sm.gpu_step("mine", p, batch=256)
        self.assertAlmostEqual(step, 2 * p.compute_ms)
        self.assertAlmostEqual(double.phases_ms["backward"], 8.0)
        rows = sm.project({"mine": p}, gpus=(8,))
        self.assertTrue(all(abs(r["single_ms"] - p.compute_ms) < 1e-9 for r in rows))
        # A larger batch hides the same communication better.
        self.assertLessEqual(sm.min_batch_for(p, "mine", 128, 8), sm.min_batch_for(p, "mine", 128, 128) or 4097)


class BadInputs(unittest.TestCase):
    def test_are_one_line_and_exit_2(self):
        script = os.path.join(ROOT, "launch", "bench", "scaling_model.py")
        with tempfile.TemporaryDirectory() as d:
            cases = {os.path.join(d, "facts.json"): '{"traceEvents": []}',
                     os.path.join(d, "broken.json"): '{"otherData": ',
                     os.path.join(d, "missing.json"): None}
            for path, text in cases.items():
                if text is not None:
                    with open(path, "w") as f:
                        f.write(text)
                p = subprocess.run([sys.executable, script, "profile", path], capture_output=True, text=True)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
                self.assertTrue(p.stderr.startswith("scaling_model: " + path), p.stderr)


class BenchCollectives(unittest.TestCase):
    def test_runs_verifies_and_reports_every_size(self):
        rc, out, err = run(MPIRUN + [os.environ["DT_TEST_BENCH"], "--reps", "10", "--segment-us", "200"])
        self.assertEqual(rc, 0, err)
        bench = json.loads(out)
        self.assertEqual((bench["world_size"], bench["group_size"]), (2, 2))
        kinds = collections.Counter((r["op"], r["path"], r["mode"]) for r in bench["results"])
        self.assertEqual(len(kinds), 6)
        self.assertEqual(set(kinds.values()), {8})
        cal = sm.calibrate_benches([bench])
        self.assertGreater(cal["fits"]["2/2"]["all_reduce/blocking"]["beta_us_per_byte"], 0)

    def test_bad_arguments_are_one_line_and_exit_2(self):
        rc, out, err = run(MPIRUN + [os.environ["DT_TEST_BENCH"], "--group", "3"])
        self.assertEqual(rc, 2, err)
        self.assertIn("--group must divide the world size", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
