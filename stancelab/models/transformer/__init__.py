"""The transformer model: its files, network, fine-tune and SetFit recipes, ONNX path and
tokenizer."""
