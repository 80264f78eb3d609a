"""Segmentation data: the synthetic "things and stuff" set, a PASCAL VOC loader, and batching."""
from .loader import DataLoader, channel_statistics, normalise, pad_to, random_crop_flip
from .merge import Relabelled, merge_classes, relabel
from .things_and_stuff import (CLASSES, IGNORE_INDEX, STUFF, THINGS, SegClass, ThingsAndStuff, boundary_band,
                               class_colours, colourise, render_scene, train_val_split)
from .voc import VOC_CLASSES, VOCSegmentation, voc_colourise, voc_palette

__all__ = ["ThingsAndStuff", "train_val_split", "CLASSES", "STUFF", "THINGS", "IGNORE_INDEX", "SegClass",
           "class_colours", "colourise", "render_scene", "boundary_band", "VOCSegmentation", "VOC_CLASSES",
           "voc_palette", "voc_colourise", "DataLoader", "normalise", "channel_statistics", "pad_to",
           "random_crop_flip", "merge_classes", "relabel", "Relabelled"]
