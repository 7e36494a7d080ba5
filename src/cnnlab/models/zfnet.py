"""ZFNet: AlexNet with a gentler stem, found by visualizing what the layers learn.

M. D. Zeiler, R. Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014
(Figure 3 and Section 4.1).
"""

from __future__ import annotations

from cnnlab.models.alexnet import ClassicConvNet, ConvLayer
from cnnlab.models.registry import register_model

# Zeiler & Fergus 2014, Sec. 3: AlexNet's SGD (batch 128, lr 0.01, momentum 0.9), 70 epochs.
RECIPE = dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="step", epochs=70, batch_size=128)

# Figure 3: 224x224 input; 7x7/2 conv1 (110x110) and 5x5/2 conv2 (26x26) replace AlexNet's
# 11x11/4 and 5x5/1; 3x3/2 max pools (55, 13, 6: the figure's sizes need ceil rounding);
# contrast normalization after the pools of the first two layers (conv, ReLU, pool, then norm:
# the figure's order, unlike AlexNet's conv, ReLU, norm, pool); 384-384-256 in conv3-5; one stream.
ZFNET = (
    ConvLayer(96, 7, stride=2, padding=1, norm=True, pool=True),
    ConvLayer(256, 5, stride=2, norm=True, pool=True),
    ConvLayer(384, 3, padding=1),
    ConvLayer(384, 3, padding=1),
    ConvLayer(256, 3, padding=1, pool=True),
)
# Seed 000: "CONV3,4,5: instead of 384, 384, 256 filters use 512, 1024, 512" (the paper's
# Table 2 variant with larger middle layers, which improved its error).
ZFNET_LARGE = ZFNET[:2] + (
    ConvLayer(512, 3, padding=1),
    ConvLayer(1024, 3, padding=1),
    ConvLayer(512, 3, padding=1, pool=True),
)


@register_model(recipe=RECIPE, family="zfnet", paper="Zeiler & Fergus 2013", input_size=(3, 224, 224))
def zfnet(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5,
          input_size: int | tuple[int, ...] = 224) -> ClassicConvNet:
    """ZFNet as in its Figure 3: 7x7/2 conv1, 5x5/2 conv2, 384-384-256, pool before norm, 224x224."""
    return ClassicConvNet(ZFNET, num_classes=num_classes, in_chans=in_chans, input_size=input_size, dropout=dropout, pool_ceil_mode=True,
                          norm_after_pool=True, name="zfnet")


@register_model(recipe=RECIPE, family="zfnet", paper="Zeiler & Fergus 2013", input_size=(3, 224, 224))
def zfnet_large(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5,
                input_size: int | tuple[int, ...] = 224) -> ClassicConvNet:
    """ZFNet with conv3-5 widened to 512-1024-512, as seed 000 describes it.

    Differs from `zfnet` only in those three widths (and so in fc6's input, 6x6x512).
    """
    return ClassicConvNet(ZFNET_LARGE, num_classes=num_classes, in_chans=in_chans, input_size=input_size, dropout=dropout,
                          pool_ceil_mode=True, norm_after_pool=True, name="zfnet_large")
