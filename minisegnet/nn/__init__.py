"""Layers and containers (``from minisegnet import nn``)."""
from . import init
from .layers import AvgPool2d, Conv2d, ConvTranspose2d, Identity, MaxPool2d, ReLU, Sigmoid, Tanh, Upsample
from .module import Module, Parameter, Sequential, load_state_dict, save_npz_atomic, save_state_dict

__all__ = ["Module", "Parameter", "Sequential", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d",
           "Upsample", "ReLU", "Sigmoid", "Tanh", "Identity", "init",
           "save_state_dict", "load_state_dict", "save_npz_atomic"]
