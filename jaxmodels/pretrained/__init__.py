"""Released models in and out: Hugging Face GPT-2, BERT and ViT directories and torchvision ResNet-50 state dicts.

A release (config.json + safetensors weights) is read without PyTorch (weights_files), its class looked up
(registry), its config turned into a jaxmodels model config and its tensors into the model's parameter tree by a
table of rows per architecture (table; hf_gpt2, hf_bert, hf_vit, torchvision_resnet). `importer` writes the
result as an ordinary jaxmodels export; `hf_export` runs the same tables backwards to write a Hugging Face
directory that `transformers` loads. docs/pretrained.md has the commands and the measured differences.
"""
