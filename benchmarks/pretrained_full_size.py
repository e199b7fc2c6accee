"""Full-size released architectures through `jaxmodels import`: outputs against transformers / torch, and the
import's time and memory for GPT-2 124M. Outside the unit tests (they use the tiny fixtures of
tests/fixtures/pretrained/); about 3 minutes on 2 CPU cores, 2 GB of disk.

Two steps, since the models are built by PyTorch and imported by jaxmodels, which may live in different venvs:

    python benchmarks/pretrained_full_size.py build --dir /tmp/full_size      # torch + transformers
    python benchmarks/pretrained_full_size.py compare --dir /tmp/full_size    # jaxmodels

`make interop` installs jaxmodels, `transformers` and the CPU `torch` wheel into one venv (.venv-interop) and runs
both. `build` saves random GPT-2 124M (GPT2LMHeadModel), BERT-base (BertForMaskedLM), ViT-B/16
(ViTForImageClassification, 1,000 labels) with `save_pretrained`, and a torchvision ResNet-50 state dict (written
in torchvision's key names without torchvision, as benchmarks/pretrained_fixtures.py does), each with noise on
every norm and bias and its float32 outputs on fixed inputs. `compare` imports each with `jaxmodels import`
(GPT-2 in a fresh process, timing it (wall and CPU time: on a shared machine the wall time grows with the load)
and reading its peak resident memory) and prints a Markdown table of max
|output difference|, which docs/pretrained.md quotes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

MODELS = ("gpt2", "bert-base-uncased", "vit-base-patch16-224", "resnet50")


def build(directory: Path) -> None:
    import torch
    import transformers

    sys.path.insert(0, str(Path(__file__).parent))
    from pretrained_fixtures import perturbed, resnet_forward, resnet_state_dict
    from safetensors.torch import save_file

    torch.manual_seed(0)
    torch.set_num_threads(2)
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 30000, (2, 16), generator=generator)
    image = torch.randn(1, 3, 224, 224, generator=generator)
    models = {
        "gpt2": transformers.GPT2LMHeadModel(transformers.GPT2Config()),
        "bert-base-uncased": transformers.BertForMaskedLM(transformers.BertConfig()),
        "vit-base-patch16-224": transformers.ViTForImageClassification(transformers.ViTConfig(num_labels=1000)),
    }
    for name, model in models.items():
        model = perturbed(model, seed=2)
        model.save_pretrained(directory / name)
        inputs = {"pixel_values": image} if name.startswith("vit") else {"input_ids": tokens}
        with torch.no_grad():
            logits = model(**inputs).logits
        np.savez(directory / name / "reference.npz", logits=logits.numpy(), **{k: v.numpy() for k, v in inputs.items()})
        print(f"built {name}: {sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
    state = resnet_state_dict(width=64, num_classes=1000, generator=generator)
    (directory / "resnet50").mkdir(parents=True, exist_ok=True)
    save_file(state, directory / "resnet50" / "model.safetensors")
    with torch.no_grad():
        logits = resnet_forward(state, image)
    np.savez(directory / "resnet50" / "reference.npz", logits=logits.numpy(), pixel_values=image.numpy())
    print("built resnet50", flush=True)


# Run in a fresh process: the import alone, its wall time and the process's peak resident memory.
TIMED_IMPORT = """
import json, resource, sys, time
from jaxmodels.pretrained.importer import import_release
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
before, cpu_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, cpu()
start = time.perf_counter()
import_release(sys.argv[1], sys.argv[2])
seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu_before
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_bytes": peak, "before_bytes": before}))
"""


def compare(directory: Path) -> None:
    from jaxmodels.pretrained.importer import from_pretrained

    weights = directory / "gpt2" / "model.safetensors"
    out = directory / "gpt2_export"
    timed = subprocess.run(
        [sys.executable, "-c", TIMED_IMPORT, str(directory / "gpt2"), str(out)], check=True, capture_output=True
    )
    measured = json.loads(timed.stdout.decode().strip().splitlines()[-1])
    size = weights.stat().st_size
    print(
        f"GPT-2 124M import: {measured['seconds']:.1f} s ({measured['cpu_seconds']:.1f} s of CPU time); "
        f"peak resident memory {measured['peak_bytes'] / 1e9:.2f} GB "
        f"({measured['peak_bytes'] / size:.2f}x the {size / 1e9:.2f} GB file; "
        f"{(measured['peak_bytes'] - measured['before_bytes']) / size:.2f}x above the process before the import)"
    )
    import jax

    print("\n| model | class | parameters | max abs output difference | max abs output |\n|---|---|---|---|---|")
    for name in MODELS:
        model = from_pretrained(directory / name)
        reference = np.load(directory / name / "reference.npz")
        if "pixel_values" in reference:
            outputs = model.apply(reference["pixel_values"].transpose(0, 2, 3, 1))
        else:
            outputs = model.apply(reference["input_ids"])
        difference = np.abs(np.asarray(outputs) - reference["logits"]).max()
        num_params = sum(np.size(leaf) for leaf in jax.tree.leaves(model.variables["params"]))
        config = directory / name / "config.json"
        architecture = json.loads(config.read_text())["architectures"][0] if config.is_file() else "torchvision"
        largest = np.abs(reference["logits"]).max()
        print(f"| {name} | {architecture} | {num_params:,} | {difference:.1e} | {largest:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("build", "compare"))
    parser.add_argument("--dir", type=Path, required=True, help="where the full-size models are written")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    build(args.dir) if args.step == "build" else compare(args.dir)


if __name__ == "__main__":
    main()
