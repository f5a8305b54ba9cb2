"""Convert a PyTorch checkpoint (pytorch_model.bin, as mamba_ssm and older Hugging Face
uploads ship) to model.safetensors in the same folder, which `ssm` and SSMLanguage read.

    python3 scripts/pretrained/convert_bin.py MODEL_DIR [--dtype keep|float32|bfloat16|float16]

Tensors are saved under their own names, made contiguous; a tensor that shares storage with
another (a tied head) is saved once, under the first name, as safetensors requires. The
config.json of a mamba_ssm checkpoint (d_model, n_layer, ssm_cfg) is read by SSMLanguage
as it is. Needs torch and safetensors.
"""
import argparse
import os
import sys

import torch
from safetensors.torch import save_file


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--dtype", default="keep", choices=["keep", "float32", "bfloat16", "float16"])
    args = ap.parse_args()
    source = os.path.join(args.folder, "pytorch_model.bin")
    target = os.path.join(args.folder, "model.safetensors")
    if not os.path.isfile(source):
        sys.exit(f"{source}: no such file")
    state = torch.load(source, map_location="cpu", weights_only=True)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    out, seen = {}, {}
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            continue
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in seen:
            print(f"{name}: shares storage with {seen[key]}, left out (a tied weight)")
            continue
        seen[key] = name
        if args.dtype != "keep" and tensor.is_floating_point():
            tensor = tensor.to(getattr(torch, args.dtype))
        out[name] = tensor.contiguous()
    tmp = target + ".tmp"
    save_file(out, tmp, metadata={"format": "pt"})
    os.replace(tmp, target)
    print(f"{target}: {len(out)} tensors")


if __name__ == "__main__":
    main()
