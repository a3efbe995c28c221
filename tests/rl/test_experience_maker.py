"""The group reward terms (curiosity) + upstream GRPO advantages + SSR on OpenRLHF's real `Experience` objects and experience maker.

The experiences are built the way upstream's `SamplesGenerator` builds them (one per rollout sample, with
multimodal training inputs), grouped by upstream's `split_rollout_samples`, and pushed through our
`PixelReasonerExperienceMaker.compute_advantages_and_returns` (which calls upstream's GRPO code); what comes
out is then loaded into upstream's actor-side `NaiveReplayBuffer` and collated like the actor's DataLoader.
"""
import copy
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("openrlhf")

from openrlhf_ext.run_config import RunConfig, RunLogConfig  # noqa: E402
from pixel_reasoner import settings  # noqa: E402
from pixel_reasoner.errors import DataError  # noqa: E402
from pixel_reasoner.rewards import SampleOutcome  # noqa: E402
from pixel_reasoner.rewards.shaping import RewardConfig, sample_rewards  # noqa: E402
from pixel_reasoner.ssr import SSRConfig  # noqa: E402

PAD = 151643
N = 4  # samples per query
QUERIES = 4
TRAIN_BATCH = 4


@pytest.fixture(scope="module")
def trainer_module():
    from openrlhf_ext import trainer

    return trainer


ARGV = ("--actor.model_name_or_path", "m", "--algo.advantage.estimator", "group_norm",
        "--rollout.n_samples_per_prompt", str(N), "--rollout.batch_size", str(QUERIES),
        "--rollout.micro_batch_size", "2", "--train.batch_size", str(TRAIN_BATCH), "--algo.kl.init_coef", "0",
        "--data.max_images_per_prompt", "3")


def make_sample(sample_id: int, correct: float, n_vo: int, images: int | None = None,
                terms: RewardConfig = RewardConfig()) -> "Experience":
    """One rollout sample as upstream's `_process_response_into_experience` makes it from our agent's response:
    the reward and logs the agent reports (the outcome, the sample terms scored by `terms`); `images` produced by
    its operations (default: every operation executed and produced one)."""
    images = n_vo if images is None else images
    from openrlhf.trainer.ppo_utils.experience import Experience

    outcome = SampleOutcome(correct=correct, num_operations=n_vo, num_operation_errors=n_vo - min(images, n_vo),
                            num_images=images, turns=1 + n_vo, answered=True, truncated=False, is_video=False)
    contributions = sample_rewards(outcome, terms.active())
    reward = sum(contributions.values())
    logs = {key: torch.tensor([value]) for key, value in {**outcome.to_logs(), **contributions}.items()}

    prompt_len, action_len = 5, 3 + sample_id % 3  # different lengths -> padding inside micro-batches
    sequences = torch.full((prompt_len + action_len,), 1000 + sample_id, dtype=torch.long)
    action_mask = torch.zeros(len(sequences), dtype=torch.long)
    action_mask[prompt_len:] = 1
    grid = torch.tensor([[1, 2, 2]] * (1 + images))  # the dataset image + one per crop
    mm = {"pixel_values": torch.full((int(grid.prod(-1).sum()), 12), float(sample_id)), "image_grid_thw": grid}
    return Experience(
        sequences=sequences.unsqueeze(0), attention_mask=torch.ones_like(sequences).unsqueeze(0),
        action_mask=action_mask[1:].unsqueeze(0), prompts=[f"q{sample_id // N}"], labels=[f"label{sample_id // N}"],
        images=[[f"img{sample_id // N}.png"]], mm_train_inputs=[mm], rewards=torch.tensor([reward]),
        scores=torch.tensor([correct]), response_length=torch.tensor([action_len]), truncated=torch.tensor([False]),
        total_length=torch.tensor([float(len(sequences))]),
        info={"reward": torch.tensor([reward]), "score": torch.tensor([correct]),
              "response_clip_ratio": torch.tensor([False]), **logs})


def make_step(maker, correct, n_vo, images=None):
    """Rollout samples (scored by the maker's reward terms) -> micro-batches (upstream) -> log-probs filled as
    `make_experience` would."""
    images = images or [None] * len(correct)
    samples = [make_sample(i, c, k, m, maker.run.rewards) for i, (c, k, m) in enumerate(zip(correct, n_vo, images))]
    experiences = maker.split_rollout_samples(samples)
    for e in experiences:
        e.action_log_probs = -torch.rand(e.action_mask.shape) * e.action_mask
        e.kl = torch.zeros(e.action_mask.shape)
        e.info["kl"] = torch.zeros(len(e.sequences))
    return experiences


@pytest.fixture
def maker(trainer_module, tmp_path, upstream_args):
    """Our experience maker on the namespace upstream's parser and post-processing make of ARGV (+ extra flags)."""
    from openrlhf.trainer.ppo_utils.kl_controller import FixedKLController

    def build(ssr=SSRConfig(), extra=(), rewards=RewardConfig()):
        args = upstream_args(ARGV + tuple(extra))
        run = RunConfig(rewards=rewards, ssr=ssr, log=RunLogConfig(run_dir=str(tmp_path)))
        return trainer_module.PixelReasonerExperienceMaker(
            None, None, None, None, FixedKLController(0.0), SimpleNamespace(args=args),
            SimpleNamespace(pad_token_id=PAD), run=run, rollout_size=N * QUERIES,
            train_batch_size=TRAIN_BATCH, group_log_path=str(tmp_path / "groups.jsonl"))
    return build


def sample_id(exp) -> int:
    return int(exp.sequences[0, 0]) - 1000


def test_curiosity_then_grpo_then_ssr_on_real_experiences(maker, tmp_path, trainer_module):
    m = maker()
    m.current_step = 1
    # q0: all wrong, one of 4 crops -> RaPR 1/4 -> bonus 0.025 breaks uniformity
    # q1: all right, crops [1,2,1,1] -> penalty -0.05 on sample 5 (scored by the agent)
    # q2: mixed correctness; q3: all wrong, no crop -> uniform, zero advantage
    correct = [0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0]
    n_vo = [1, 0, 0, 0, 1, 2, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0]
    experiences = make_step(m, correct, n_vo)
    agent = {idx: float(e.rewards[i]) for e in experiences for i, idx in enumerate(e.index)}
    assert agent[5] == pytest.approx(0.95) and agent[0] == 0.0  # the agent's reward: the sample terms only
    out = m.compute_advantages_and_returns(experiences)

    fresh = {}
    for e in m.fresh_experiences:
        for i, idx in enumerate(e.index):
            fresh[idx] = (float(e.rewards[i]), float(e.info["reward/curiosity"][i]),
                          float(e.info["reward/efficiency"][i]),
                          float((e.advantages[i] * e.action_mask[i]).sum() / e.action_mask[i].sum()))
    assert fresh[0][1] == pytest.approx(0.5 * (0.3 - 0.25)) and fresh[1][1] == 0.0
    assert fresh[5][2] == pytest.approx(-0.05) and fresh[4][2] == 0.0
    assert fresh[0][0] == pytest.approx(0.025) and fresh[5][0] == pytest.approx(0.95)
    shaped = np.array([fresh[i][0] for i in range(16)]).reshape(4, 4)
    expected_adv = (shaped - shaped.mean(1, keepdims=True)) / (shaped.std(1, ddof=1, keepdims=True) + 1e-9)
    assert np.array([fresh[i][3] for i in range(16)]) == pytest.approx(expected_adv.reshape(-1), abs=1e-5)

    # SSR: 12 informative samples (q3 is uniform); the batch is half the rollout = 8, a multiple of 4
    assert len(out) == 8 and len(out) % TRAIN_BATCH == 0
    assert m.step_stats["ssr/fresh_informative"] == 12.0
    assert m.step_stats["ssr/reward_uniform_group_ratio"] == 0.25
    assert m.step_stats["reward/uniform_group_ratio_correctness"] == 0.75  # q0, q1, q3
    assert m.step_stats["reward/curiosity_nonzero_share"] == pytest.approx(1 / 16)
    originals = {i: make_sample(i, correct[i], n_vo[i]) for i in range(16)}
    for e in out:
        sid = sample_id(e)
        assert sid < 12 and len(e.sequences) == 1
        orig = originals[sid]
        assert torch.equal(e.sequences, orig.sequences)  # padding removed, tokens intact
        assert torch.equal(e.mm_train_inputs[0]["pixel_values"], orig.mm_train_inputs[0]["pixel_values"])
        assert torch.equal(e.mm_train_inputs[0]["image_grid_thw"], orig.mm_train_inputs[0]["image_grid_thw"])
        assert float(e.info["ssr_replayed"][0]) == 0.0

    records = [json.loads(line) for line in open(tmp_path / "groups.jsonl")]
    assert [r["rapr"] for r in records] == [0.25, 1.0, 0.5, 0.0]
    assert records[0]["terms"]["curiosity"][0] == pytest.approx(0.025)
    assert records[1]["terms"]["efficiency"][1] == pytest.approx(-0.05)
    assert records[2]["terms"]["correctness"] == [1.0, 0.0, 1.0, 0.0] and records[2]["correct"] == [1, 0, 1, 0]


def test_uniform_steps_skip_then_replay_and_actor_side_batching(maker, trainer_module, monkeypatch):
    from openrlhf.trainer.ppo_utils import replay_buffer as rb
    from openrlhf.utils.vlm_utils import merge_mm_train_inputs

    m = maker()
    with pytest.raises(trainer_module.SkipTrainingStep) as skip:
        m.compute_advantages_and_returns(make_step(m, [0.0] * 16, [0] * 16))  # every group uniform
    assert skip.value.stats["ssr/skipped_step"] == 1.0
    assert skip.value.stats["ssr/reward_uniform_group_ratio"] == 1.0

    informative = m.compute_advantages_and_returns(make_step(m, [1, 0, 0, 0] + [0] * 12, [0] * 16))
    stored = {sample_id(e): e.action_log_probs.clone() for e in informative}
    replayed = m.compute_advantages_and_returns(make_step(m, [0.0] * 16, [0] * 16))
    assert len(replayed) == 8 and all(float(e.info["ssr_replayed"][0]) == 1.0 for e in replayed)
    assert m.step_stats["ssr/replayed_share"] == 1.0
    for e in replayed:  # "keep": replayed samples carry the behaviour log-probs stored when generated
        assert sample_id(e) in range(4)
        if sample_id(e) in stored:
            assert torch.equal(e.action_log_probs, stored[sample_id(e)])

    # the actor side: upstream's replay buffer + DataLoader collate accept the SSR batch
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    buffer = rb.NaiveReplayBuffer(sample_batch_size=2)
    buffer.target_device = torch.device("cpu")
    for e in replayed:
        buffer.append(e)
    assert len(buffer) == 8
    batch = buffer.collate_fn([buffer[i] for i in range(2)])
    assert batch.sequences.shape[0] == 2 and batch.advantages.shape == batch.action_mask.shape
    mm = merge_mm_train_inputs(batch.mm_train_inputs, "cpu")
    assert mm["pixel_values"].shape[0] == int(mm["image_grid_thw"].prod(-1).sum())


def test_missing_sample_log_names_the_key(maker):
    m = maker()
    experiences = make_step(m, [1, 0, 0, 0] * 4, [0] * 16)
    for e in experiences:
        del e.info["num_operations"]
    with pytest.raises(DataError, match="lack \\['num_operations'\\]; group reward terms read"):
        m.compute_advantages_and_returns(experiences)


def test_ssr_disabled_returns_upstream_batch(maker):
    m = maker(ssr=SSRConfig(enabled=False))
    out = m.compute_advantages_and_returns(make_step(m, [0.0] * 16, [0] * 16))
    assert len(out) == 8  # upstream's micro-batches of 2, untouched (no crash on an all-uniform step)
    assert sum(len(e.sequences) for e in out) == 16


def test_without_group_terms_an_agent_without_outcome_logs_still_reports_uniform_groups(maker):
    m = maker(rewards=RewardConfig(terms=("correctness",)))
    experiences = make_step(m, [1, 0, 0, 0] + [0] * 12, [0] * 16)
    for e in experiences:
        del e.info["num_operations"]
    out = m.compute_advantages_and_returns(experiences)
    assert len(out) == 8
    assert m.step_stats["ssr/reward_uniform_group_ratio"] == 0.75
    assert "reward/curiosity_mean" not in m.step_stats and m.step_stats["reward/correctness_mean"] == 1 / 16


# ---------------------------------------------------------------- the recipe's advantage estimator (paper example)

@pytest.fixture(scope="module")
def recipe(dry_run, rl_7b_recipe_argv) -> dict:
    """What `recipes/rl_7b.sh` resolves to with its defaults (a real dry run; its data need not exist here)."""
    _code, out, document = dry_run(rl_7b_recipe_argv)
    assert document is not None, out[-4000:]
    return document


def recipe_maker(trainer_module, tmp_path, recipe, estimator: str | None = None, alpha: float | None = None):
    """Our experience maker configured exactly as `recipes/rl_7b.sh` configures it, with SSR off and optionally
    another advantage estimator (upstream's post-processing does not depend on it) or curiosity α."""
    from openrlhf.trainer.ppo_utils.kl_controller import FixedKLController

    from openrlhf_ext import train

    args = train.from_plain(recipe["openrlhf"])
    if estimator is not None:
        args.algo.advantage.estimator = estimator
    ours = copy.deepcopy(recipe["pixel_reasoner"])
    if alpha is not None:
        ours["rewards"]["settings"]["curiosity"]["weight"] = alpha
    run = dataclasses.replace(settings.build(RunConfig, ours), ssr=SSRConfig(enabled=False),
                              log=RunLogConfig(run_dir=str(tmp_path)))
    return trainer_module.PixelReasonerExperienceMaker(
        None, None, None, None, FixedKLController(0.0), SimpleNamespace(args=args), SimpleNamespace(pad_token_id=PAD),
        run=run, rollout_size=args.rollout.n_samples_per_prompt, train_batch_size=args.train.batch_size)


def group_advantages(maker, correct, n_vo) -> np.ndarray:
    out = maker.compute_advantages_and_returns(make_step(maker, correct, n_vo))
    adv = np.empty(len(correct))
    for e in out:
        for i, idx in enumerate(e.index):
            adv[idx] = float((e.advantages[i] * e.action_mask[i]).sum() / e.action_mask[i].sum())
    return adv


# The paper's calibration (appendix C.3): with 8 samples a lone tool user earns 0.5 * (0.3 - 1/8) = 0.0875.
ALL_WRONG_ONE_TOOL_USER = ([0.0] * 8, [1] + [0] * 7)
ALL_RIGHT_ONE_THREE_OP_SAMPLE = ([1.0] * 8, [3, 1, 1] + [0] * 5)  # RaPR 3/8 > H: no bonus, penalty −0.1


def test_recipe_advantages_keep_alpha_and_beta_on_the_papers_example(trainer_module, tmp_path, recipe):
    """The official GRPO (r − mean(group), `dr_grpo` upstream): the bonus moves the tool user by 7/8 · 0.0875."""
    maker = recipe_maker(trainer_module, tmp_path, recipe)
    assert maker.args.rollout.n_samples_per_prompt == 8 and maker.args.algo.advantage.estimator == "dr_grpo"
    assert maker.run.rewards.to_dict()["settings"]["curiosity"]["weight"] == 0.5
    adv = group_advantages(maker, *ALL_WRONG_ONE_TOOL_USER)
    assert adv[0] == pytest.approx(0.0875 * 7 / 8, abs=1e-6)  # +0.077, not +2.47
    assert adv[1:] == pytest.approx([-0.0875 / 8] * 7, abs=1e-6)
    doubled = group_advantages(recipe_maker(trainer_module, tmp_path, recipe, alpha=1.0), *ALL_WRONG_ONE_TOOL_USER)
    assert doubled == pytest.approx(2 * adv, abs=1e-6)  # α scales the curiosity term
    # β: two extra operations cost 2 · 0.05 = 0.1, i.e. −0.1 + 0.1/8 relative to the group
    assert group_advantages(maker, *ALL_RIGHT_ONE_THREE_OP_SAMPLE)[0] == pytest.approx(-0.1 * 7 / 8, abs=1e-6)
    # a correct answer in a 1-of-8 group still dominates any curiosity term
    assert group_advantages(maker, [1.0] + [0.0] * 7, [0] * 8)[0] == pytest.approx(7 / 8, abs=1e-6)


def test_group_norm_remains_an_option_and_makes_alpha_scale_free(trainer_module, tmp_path, recipe):
    """Why it is not the default: dividing by the group std gives a wrong tool user in an all-wrong group the
    advantage of a lone correct answer (+2.47), whatever α is."""
    adv = group_advantages(recipe_maker(trainer_module, tmp_path, recipe, "group_norm"), *ALL_WRONG_ONE_TOOL_USER)
    assert adv[0] == pytest.approx(7 / 8 * np.sqrt(8), rel=1e-5)  # 2.475
    small_alpha = group_advantages(recipe_maker(trainer_module, tmp_path, recipe, "group_norm", alpha=0.05),
                                   *ALL_WRONG_ONE_TOOL_USER)
    assert small_alpha == pytest.approx(adv, rel=1e-4)


def test_recipe_bounds_the_loss_of_stale_negative_replays(recipe):
    """SSR `keep` mode replays samples with their generation-time log-probs, up to tens of optimizer steps old.
    With A < 0 plain PPO's loss −r·A grows without bound in r; the recipe's dual clip caps it at dual_clip·|A|."""
    from openrlhf_ext import train
    from openrlhf_ext.compat import install_flash_attn_stub

    install_flash_attn_stub()  # openrlhf.models imports flash_attn at module level
    from openrlhf.models.loss import PolicyLoss

    a = train.from_plain(recipe["openrlhf"])
    ssr = settings.build(RunConfig, recipe["pixel_reasoner"]).ssr
    assert ssr.enabled and ssr.stale_logprobs == "keep"
    loss_fn = PolicyLoss(clip_eps_low=a.actor.eps_clip_low_high[0], clip_eps_high=a.actor.eps_clip_low_high[1],
                         dual_clip=a.actor.dual_clip, token_level_loss=a.actor.loss_agg_mode == "token-mean",
                         policy_loss_type=a.actor.policy_loss_type)  # as upstream's PolicyModelActor builds it
    old = torch.zeros(1, 4)
    new = old + np.log(20.0)  # the policy raised these tokens' probability 20x since the sample was generated
    loss, *_ = loss_fn(new, old, torch.full((1, 4), -1.0), action_mask=torch.ones(1, 4))
    assert float(loss) == pytest.approx(a.actor.dual_clip) and a.actor.dual_clip <= 3.0
    fresh_loss, *_ = loss_fn(old, old, torch.full((1, 4), -1.0), action_mask=torch.ones(1, 4))
    assert float(fresh_loss) == pytest.approx(1.0)  # on-policy samples are unaffected


def test_buffer_bytes_count_shared_pixels_once(trainer_module):
    """A prompt pixel tensor shared by the samples of a query is paid once, split between them."""
    a, b = make_sample(0, 1.0, 0), make_sample(1, 0.0, 0)
    alone_a, alone_b = trainer_module.sample_bytes([a, b])
    pixels = a.mm_train_inputs[0]["pixel_values"]
    assert alone_a > pixels.nbytes and pixels.nbytes == b.mm_train_inputs[0]["pixel_values"].nbytes
    b.mm_train_inputs = [dict(b.mm_train_inputs[0], pixel_values=pixels)]  # one tensor, two samples
    shared = trainer_module.sample_bytes([a, b])
    assert shared[0] == pytest.approx(alone_a - pixels.nbytes / 2)
    assert sum(shared) == pytest.approx(alone_a + alone_b - pixels.nbytes)


def test_ssr_buffer_respects_its_byte_cap_on_real_experiences(maker):
    m = maker(ssr=SSRConfig(max_bytes=None))
    m.compute_advantages_and_returns(make_step(m, [1, 0, 0, 0] * 4, [0] * 16))
    full = m.step_stats["ssr/buffer_bytes"]
    assert m.step_stats["ssr/buffer_size"] == 16 and full > 16 * 48 * 4  # pixels of 16 samples at least
    capped = maker(ssr=SSRConfig(max_bytes=int(full / 2)))
    capped.compute_advantages_and_returns(make_step(capped, [1, 0, 0, 0] * 4, [0] * 16))
    assert capped.step_stats["ssr/buffer_bytes"] <= full / 2
    assert 0 < capped.step_stats["ssr/buffer_size"] < 16
    assert capped.step_stats["ssr/buffer_evicted_for_bytes"] == 16 - capped.step_stats["ssr/buffer_size"]


def test_a_response_whose_calls_all_failed_earns_no_curiosity_bonus(maker, tmp_path):
    m = maker(ssr=SSRConfig(enabled=False))
    # q0: sample 0 cropped, sample 1 sent a malformed call (n_vo 1, no image); q1..q3 text only
    m.compute_advantages_and_returns(make_step(m, [0.0] * 16, [1, 1] + [0] * 14, images=[1, 0] + [0] * 14))
    record = json.loads(open(tmp_path / "groups.jsonl").readline())
    assert record["pixel_reasoning"] == [1, 0, 0, 0] and record["rapr"] == 0.25
    assert record["terms"]["curiosity"] == pytest.approx([0.025, 0.0, 0.0, 0.0])
    assert m.step_stats["rollout/failed_calls_only_share"] == pytest.approx(1 / 16)


# ---------------------------------------------------------------- resuming, per-step agent numbers

def test_a_resumed_maker_continues_the_same_replay(maker, tmp_path):
    """The state saved with a checkpoint (through the file `openrlhf_ext.resume` writes) gives a new maker the same
    buffer and random streams: its next step selects exactly what the uninterrupted maker selects."""
    from openrlhf_ext import resume

    def step(m, rewards, seed):
        torch.manual_seed(seed)  # the same behaviour log-probs for both makers
        return m.compute_advantages_and_returns(make_step(m, rewards, [0] * 16))

    def picked(out):
        return [(sample_id(e), float(e.info["ssr_from_earlier_step"][0])) for e in out]

    original = maker()
    step(original, [1, 0, 0, 0, 0, 1, 0, 0] + [0] * 8, seed=1)
    step(original, [0, 0, 1, 1] + [0] * 12, seed=2)
    def buffered_ids(m):  # the buffer stores single samples without their batch dimension
        return {(int(e.item.sequences[0]) - 1000, e.step) for e in m.replay.buffer.entries()}

    buffered = buffered_ids(original)
    name = resume.save_state(str(tmp_path / "ckpt"), 2, {"experience_maker": original.state_dict()})

    resumed = maker()
    state = resume.load_state(str(tmp_path / "ckpt"), {"global_step": 2, resume.STATE_KEY: name})
    resumed.load_state_dict(state["experience_maker"])
    assert buffered_ids(resumed) == buffered and len(buffered) == 12  # every sample of a mixed group
    assert resumed.replay.step == 2

    later = [1, 0, 0, 0] + [0] * 12  # 4 informative samples: the other 4 of the batch come from the buffer
    expected, got = step(original, later, seed=3), step(resumed, later, seed=3)
    assert picked(got) == picked(expected)
    assert sum(flag for _, flag in picked(got)) == 4
    for a, b in zip(expected, got):  # replays keep what was stored: behaviour log-probs, pixels
        assert torch.equal(a.action_log_probs, b.action_log_probs)
        assert torch.equal(a.mm_train_inputs[0]["pixel_values"], b.mm_train_inputs[0]["pixel_values"])


def test_agent_means_are_over_the_steps_fresh_samples(maker, trainer_module):
    m = maker()
    n_vo = [1, 0, 0, 0, 2, 2, 0, 0] + [0] * 8
    images = [0, 0, 0, 0, 0, 2] + [0] * 10  # sample 0's one call and both of sample 4's failed
    out = m.compute_advantages_and_returns(make_step(m, [1, 0, 0, 0] * 4, n_vo, images))
    stats = trainer_module.agent_sample_means(m.fresh_experiences, m.run)
    assert stats["agent/num_operations_mean"] == pytest.approx(np.mean(n_vo))
    assert stats["agent/num_images_mean"] == pytest.approx(2 / 16)
    assert stats["agent/num_operation_errors_mean"] == pytest.approx(3 / 16)
    assert stats["agent/operation_error_rate"] == pytest.approx(3 / 5)
    assert stats["agent/turns_mean"] == pytest.approx(1 + np.mean(n_vo))  # make_sample: one turn per operation + 1
    narrow = dataclasses.replace(m.run, log=dataclasses.replace(m.run.log, sample_means=("turns", "no_such_log")))
    assert set(trainer_module.agent_sample_means(m.fresh_experiences, narrow)) == {
        "agent/turns_mean", "agent/operation_error_rate"}  # keys the samples do not carry are left out
    assert len(out) == 8  # the SSR batch is another set of samples; the means above are the rollout's
