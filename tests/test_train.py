"""The training loop: callbacks, stopping, time budget, Ctrl-C, evaluation; one real short fine-tune."""

import pytest
import torch

import lesson_lib as ll
from lesson_lib.tiny import tiny_task

QUIET = dict(eval_every=0, progress=False)


class Recorder:
    def __init__(self, stop_at=None, interrupt_at=None):
        self.steps, self.evals, self.ended = [], [], None
        self.stop_at, self.interrupt_at = stop_at, interrupt_at

    def on_step(self, step, loss, history):
        self.steps.append((step, loss))
        if step == self.stop_at:
            history.request_stop()
        if step == self.interrupt_at:
            raise KeyboardInterrupt

    def on_eval(self, step, metrics, history):
        self.evals.append((step, metrics["accuracy"]))

    def on_end(self, history):
        self.ended = history.stopped


def test_callbacks_see_every_step_and_eval(tiny):
    model, _ = tiny
    rec = Recorder()
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=10, eval_every=5, batch_size=8, progress=False),
                 callbacks=[rec])
    assert [s for s, _ in rec.steps] == list(range(1, 11)) and h.steps == list(range(1, 11))
    assert [s for s, _ in rec.evals] == [5, 10] and rec.ended == "done" == h.stopped
    assert h.final["step"] == 10 and 0 <= h.final["accuracy"] <= 1 and not model.training


def test_request_stop_ends_cleanly(tiny):
    model, _ = tiny
    rec = Recorder(stop_at=3)
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=50, batch_size=8, **QUIET), callbacks=[rec])
    assert h.steps[-1] == 3 and h.stopped == "stopped" and h.final["step"] == 3


def test_ctrl_c_returns_the_history_and_leaves_the_model_usable(tiny):
    model, _ = tiny
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=50, batch_size=8, **QUIET),
                 callbacks=[Recorder(interrupt_at=4)])
    assert h.stopped == "interrupted" and len(h.losses) == 4  # step 4 finished, then Ctrl-C
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert 0 <= ll.evaluate(model, tiny_task().test)["accuracy"] <= 1


def test_time_budget(tiny):
    model, _ = tiny
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=100000, batch_size=8, time_budget=0.5, **QUIET))
    assert h.stopped == "time_budget" and h.seconds < 5


def test_only_trainable_parameters_reach_the_optimizer(tiny):
    model, _ = tiny
    ll.surgery.freeze_base(model)
    before = {n: p.clone() for n, p in model.named_parameters()}
    ll.train(model, tiny_task(), ll.TrainConfig(steps=3, lr=1e-2, batch_size=8, **QUIET))
    changed = {n for n, p in model.named_parameters() if not (p == before[n]).all()}
    assert changed == {"classifier.weight", "classifier.bias"}


def test_evaluate_and_predict(tiny):
    model, _ = tiny
    task = tiny_task()
    res = ll.evaluate(model, task.test)
    assert set(res) == {"accuracy", "loss", "n"} and res["n"] == len(task.test)
    assert ll.evaluate(model, task.test, limit=8)["n"] == 8
    probs = ll.predict(model, ["the movie was great", "awful"])
    assert probs.shape == (2, 2) and abs(float(probs.sum()) - 2) < 1e-5


def test_learning_on_the_tiny_task_beats_chance(tiny):
    model, _ = tiny
    task = tiny_task(n=256)
    ll.train(model, task, ll.TrainConfig(steps=60, lr=3e-3, batch_size=16, **QUIET))
    assert ll.evaluate(model, task.test)["accuracy"] >= 0.9


@pytest.mark.integration
def test_short_full_fine_tune_on_real_tweets_beats_chance():
    model, _ = ll.load_base()
    task = ll.load_task("tweets", limit=1000)  # test: 250 balanced tweets, chance = 50 %
    before = ll.evaluate(model, task.test)
    h = ll.train(model, task, ll.TrainConfig(steps=30, lr=1e-4, batch_size=16, **QUIET))
    after = ll.evaluate(model, task.test)
    assert sum(h.losses[-10:]) / 10 < sum(h.losses[:10]) / 10
    assert after["loss"] < before["loss"]
    assert after["accuracy"] > 0.65, (before, after)


def test_linear_schedule_warms_up_then_decays_and_constant_keeps_the_rate():
    from lesson_lib.train import lr_factor

    f = lr_factor(ll.TrainConfig(steps=100))
    factors = [f(t) for t in range(100)]
    assert factors[:10] == [(t + 1) / 10 for t in range(10)] and factors[9] == 1.0
    assert all(a > b for a, b in zip(factors[9:], factors[10:])) and 0 < factors[-1] < 0.02
    assert {lr_factor(ll.TrainConfig(steps=100, schedule="constant"))(t) for t in range(100)} == {1.0}
    with pytest.raises(ValueError, match="schedule"):
        ll.TrainConfig(schedule="cosine")
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=2))
    seen = []
    opt_lrs = type("C", (), {"on_step": lambda self, step, loss, h: seen.append(step)})()
    ll.train(model, tiny_task(n=32), ll.TrainConfig(steps=5, batch_size=8, eval_every=0, progress=False),
             callbacks=[opt_lrs])
    assert seen == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("method", ["lora", "adapter", "prefix", "prompt", "unipelt"])
def test_the_same_seeds_give_the_same_run_whatever_was_drawn_before(method):
    """Every initialisation the library does comes from a seed, not from torch's global random state."""
    from lesson_lib.experiments import run_method

    task = tiny_task(n=32)
    runs = []
    for draws in (0, 3):
        torch.rand(draws)  # some unrelated random numbers drawn in between
        res, model = run_method(method, task, steps=3, batch_size=8, tiny=True, seed=0)
        runs.append((res.loss, {k: v.clone() for k, v in model.state_dict().items()}))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(v, runs[1][1][k]) for k, v in runs[0][1].items())
    other, _ = run_method(method, task, steps=3, batch_size=8, tiny=True, seed=1)
    assert other.loss != runs[0][0]


def test_inject_with_a_seed_gives_the_same_modules_and_another_seed_others():
    a, b, c = (ll.load_base(tiny=True)[0] for _ in range(3))
    for model, seed in ((a, 0), (b, 0), (c, 5)):
        torch.rand(7)
        ll.inject(model, [ll.LoRAConfig(r=2), ll.AdapterConfig(bottleneck=4, init="normal"), ll.PrefixConfig(length=2)],
                  gates=ll.GateConfig(), seed=seed)
    sa, sb, sc = (m.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if "lora_A" in k)
