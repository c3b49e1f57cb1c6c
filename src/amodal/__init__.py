"""Tuning-free amodal segmentation via the occlusion-free bias of inpainting models."""

__version__ = "0.1.0"
