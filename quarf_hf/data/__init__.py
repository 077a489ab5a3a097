"""Datasets for training and evaluation (not shipped to the Hub): local/Hub segmentation data,
the synthetic quarf-shapes benchmark, and clean crops of photographs (the built-in photos or a
user's folder) for restoration."""

from .crops import PhotoCrops
from .photos import PHOTOS, SPLITS, load_photo, photo_names
from .segmentation import SegmentationDataset, load_segmentation_dataset
from .shapes import QuarfShapes
from .specs import load_dataset_spec

__all__ = ["SegmentationDataset", "load_segmentation_dataset", "QuarfShapes", "load_dataset_spec", "PhotoCrops",
           "PHOTOS", "SPLITS", "load_photo", "photo_names"]
