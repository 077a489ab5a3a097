"""QuARF-SegFormer and the restoration model under ``transformers.Trainer``: gradient accumulation
gives the update of one large batch, ``compute_metrics`` receives the prediction alone, and the
load-balancing loss is part of the model's loss (so Trainer and quarf-hf's loop agree)."""

import torch
from torch import nn
from transformers import Trainer, TrainingArguments

import quarf_hf  # noqa: F401  (registers the Auto classes)
from quarf_hf import QuarfRestorationConfig, QuarfRestorationModel, QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation
from quarf_hf.models.quarf import quarf_aux_loss

TINY = {"hidden_sizes": [8, 16, 16, 16], "depths": [1, 1, 1, 1], "num_attention_heads": [1, 1, 1, 1],
        "sr_ratios": [2, 1, 1, 1], "decoder_hidden_size": 16, "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0, "drop_path_rate": 0.0, "classifier_dropout_prob": 0.0}
# No router noise: the same forward twice gives the same numbers.
BLOCK = {"num_groups": 2, "experts": [[3, 1], [3, 2]], "router_noise": False}


class Items(torch.utils.data.Dataset):
    def __init__(self, pixels, labels):
        self.pixels, self.labels = pixels, labels

    def __len__(self):
        return len(self.pixels)

    def __getitem__(self, index):
        return {"pixel_values": self.pixels[index], "labels": self.labels[index]}


def segformer(**config):
    torch.manual_seed(0)
    return QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(
        quality="brisque", num_labels=3, quarf=BLOCK, **TINY, **config))


def restoration(**config):
    torch.manual_seed(0)
    model = QuarfRestorationModel(QuarfRestorationConfig(block_out_channels=[8, 16], norm_num_groups=4,
                                                         quarf=BLOCK, **config))
    nn.init.normal_(model.conv_out.weight, std=0.01)  # not the identity: every weight gets a gradient
    return model


def segmentation_data(n=4):
    generator = torch.Generator().manual_seed(1)
    return Items(torch.randn(n, 3, 32, 32, generator=generator), torch.randint(0, 3, (n, 32, 32), generator=generator))


def restoration_data(n=4):
    generator = torch.Generator().manual_seed(1)
    clean = torch.rand(n, 3, 16, 16, generator=generator)
    return Items((clean + 0.1 * torch.randn(n, 3, 16, 16, generator=generator)).clamp(0, 1), clean)


def arguments(tmp_path, batch, accumulation, **extra):
    # SGD with learning rate 1 and no clipping or decay: the update is minus the accumulated gradient.
    return TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation,
        max_steps=1, learning_rate=1.0, optim="sgd", lr_scheduler_type="constant", weight_decay=0.0,
        max_grad_norm=0.0, use_cpu=True, report_to="none", save_strategy="no", logging_strategy="no",
        train_sampling_strategy="sequential", dataloader_num_workers=0, disable_tqdm=True, **extra)


def trainer_update(make_model, data, tmp_path, batch, accumulation):
    model = make_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    Trainer(model=model, args=arguments(tmp_path, batch, accumulation), train_dataset=data).train()
    return {n: before[n] - p.detach() for n, p in model.named_parameters() if n in before}


def hand_gradient(make_model, data, halves):
    """The mean over ``halves`` (lists of indices) of each half-batch's gradient, by hand."""
    model = make_model().train()
    for half in halves:
        batch = {k: torch.stack([data[i][k] for i in half]) for k in ("pixel_values", "labels")}
        (model(**batch).loss / len(halves)).backward()
    return {n: p.grad for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}


def assert_same(update, expected):
    assert expected and set(expected) <= set(update)
    for name, grad in expected.items():
        torch.testing.assert_close(update[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_trainer_accumulation_equals_one_large_batch_restoration(tmp_path):
    """GroupNorm only (no batch statistics): GA=2 on two half-batches = GA=1 on the whole batch."""
    data = restoration_data()
    accumulated = trainer_update(restoration, data, tmp_path / "ga2", batch=2, accumulation=2)
    whole = trainer_update(restoration, data, tmp_path / "ga1", batch=4, accumulation=1)
    assert_same(accumulated, {n: g for n, g in whole.items() if g.abs().sum() > 0})


def test_trainer_accumulation_segformer_is_the_mean_of_the_half_batches(tmp_path):
    """SegFormer's decode head has BatchNorm (batch statistics), so the right update is the mean of
    the half-batches' gradients, not the whole batch's: Trainer's GA=2 step gives exactly that."""
    data = segmentation_data()
    accumulated = trainer_update(segformer, data, tmp_path, batch=2, accumulation=2)
    assert_same(accumulated, hand_gradient(segformer, data, [[0, 1], [2, 3]]))


def test_compute_metrics_receives_the_prediction_alone(tmp_path):
    seen = {}

    def compute_metrics(prediction):
        seen["predictions"] = prediction.predictions
        return {"shape": float(len(prediction.predictions.shape))}

    for name, make_model, data, shape in (("segmentation", segformer, segmentation_data(), (4, 3, 8, 8)),
                                          ("restoration", restoration, restoration_data(), (4, 3, 16, 16))):
        trainer = Trainer(model=make_model(), args=arguments(tmp_path / name, 2, 1, per_device_eval_batch_size=2),
                          eval_dataset=data, compute_metrics=compute_metrics)
        metrics = trainer.evaluate()
        assert not isinstance(seen["predictions"], tuple), name
        assert seen["predictions"].shape == shape and metrics["eval_shape"] == 4.0


def test_load_balancing_loss_is_part_of_the_models_loss():
    data = segmentation_data(2)
    batch = {"pixel_values": data.pixels, "labels": data.labels}
    plain, balanced = segformer(), segformer(load_balancing_weight=0.5)
    plain.train(), balanced.train()
    loss, loss_balanced = plain(**batch).loss, balanced(**batch).loss
    aux = quarf_aux_loss(balanced)
    assert aux is not None and aux > 0
    torch.testing.assert_close(loss_balanced, loss + 0.5 * aux)
    # In evaluation there is no balance term: the loss is the task's alone.
    plain.eval(), balanced.eval()
    torch.testing.assert_close(balanced(**batch).loss, plain(**batch).loss)
    model = restoration(load_balancing_weight=0.25).train()
    out = model(pixel_values=restoration_data(2).pixels, labels=restoration_data(2).labels)
    difference = out.reconstruction - restoration_data(2).labels
    torch.testing.assert_close(out.loss, torch.sqrt(difference.square() + 1e-6).mean() + 0.25 * quarf_aux_loss(model))


class CpuAccelerator:
    device = torch.device("cpu")
    is_main_process = True


def test_the_training_loop_uses_the_models_balance_term(tmp_path):
    """quarf-hf's loop trains with the model config's load_balancing_weight (``model.config`` of the
    training config): one objective for Trainer and the loop."""
    from quarf_hf.training import TrainConfig
    from quarf_hf.training.segmentation import SegmentationTask
    from test_training import TINY_SEGFORMER, tiny_config

    data = tiny_config(tmp_path)
    data["model"] = {**data["model"], "config": {**TINY_SEGFORMER, "load_balancing_weight": 0.3}}
    task = SegmentationTask(TrainConfig.from_dict(data))
    task.load_data(CpuAccelerator())
    model = task.build_model(None, CpuAccelerator())
    assert model.config.load_balancing_weight == 0.3


def test_a_base_model_keeps_its_balance_term_unless_the_config_sets_one(tmp_path):
    """A model from ``model.base`` trains with the weight saved in its config; ``model.config``'s
    replaces it (before, the training config's own default 0.0 silently replaced the base's)."""
    from quarf_hf.training import TrainConfig
    from quarf_hf.training.segmentation import SegmentationTask
    from tiny_models import make_restoration

    base = tmp_path / "base"
    make_restoration(load_balancing_weight=0.2).save_pretrained(base)
    weights = {}
    for name, settings in (("kept", {}), ("set", {"config": {"load_balancing_weight": "5e-1"}})):
        config = TrainConfig.from_dict({"task": "restoration", "output_dir": str(tmp_path / name),
                                        "model": {"type": "quarf_restoration", "base": str(base), **settings},
                                        "data": {"train": {"type": "photos", "split": "train", "crop_size": 32}}})
        weights[name] = SegmentationTask(config).build_model(None, CpuAccelerator()).config.load_balancing_weight
    assert weights == {"kept": 0.2, "set": 0.5}
