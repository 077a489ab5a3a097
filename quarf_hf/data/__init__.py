"""Datasets for training and evaluation (not shipped to the Hub): local/Hub segmentation data
and the synthetic quarf-shapes benchmark."""

from .segmentation import SegmentationDataset, load_segmentation_dataset
from .shapes import QuarfShapes
from .specs import load_dataset_spec

__all__ = ["SegmentationDataset", "load_segmentation_dataset", "QuarfShapes", "load_dataset_spec"]
