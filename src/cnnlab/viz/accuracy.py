"""Published ImageNet top-1 accuracies for the zoo models that match a published model exactly,
each with its source and test protocol. Data, not measurements: cnnlab trains nothing on
ImageNet here.

TV: torchvision's model documentation, the IMAGENET1K_V1 weights, "acc@1" (224x224 centre crop of
a 256 resize; 299x299 for Inception v3). Our name maps to torchvision's where the architectures
load each other's checkpoints strictly (tests/models): resnet50b is torchvision's resnet50 (v1.5),
alexnet_owt its alexnet, googlenet_tv its googlenet.
"""

from __future__ import annotations

TV = "torchvision docs, IMAGENET1K_V1 acc@1, single centre crop"
# The paper-faithful nets, from their own papers (or the reference implementation the paper's
# authors point to), with each source's protocol: 10-crop figures run above single-crop ones.
KRIZHEVSKY = "Krizhevsky et al. 2012, Table 2, 1 CNN, val, average of 10 patches"
BVLC_GOOGLENET = "BVLC GoogLeNet (Caffe reference model of Szegedy et al.), val, single centre crop"
HE_TABLE_3 = "He et al. 2016, Table 3, val, 10-crop"

PUBLISHED_TOP1: dict[str, tuple[float, str]] = {
    "alexnet": (100 - 40.7, KRIZHEVSKY),
    "googlenet": (68.7, BVLC_GOOGLENET),
    "resnet50": (100 - 22.85, HE_TABLE_3),
    "resnet101": (100 - 21.75, HE_TABLE_3),
    "resnet152": (100 - 21.43, HE_TABLE_3),
    "alexnet_owt": (56.522, TV),
    "vgg11": (69.020, TV),
    "vgg13": (69.928, TV),
    "vgg16": (71.592, TV),
    "vgg19": (72.376, TV),
    "vgg11_bn": (70.370, TV),
    "vgg13_bn": (71.586, TV),
    "vgg16_bn": (73.360, TV),
    "vgg19_bn": (74.218, TV),
    "googlenet_tv": (69.778, TV),
    "inception_v3": (77.294, TV),
    "resnet18": (69.758, TV),
    "resnet34": (73.314, TV),
    "resnet50b": (76.130, TV),
    "densenet121": (74.434, TV),
    "densenet161": (77.138, TV),
    "densenet169": (75.600, TV),
    "densenet201": (76.896, TV),
    "squeezenet1_0": (58.092, TV),
    "squeezenet1_1": (58.178, TV),
    "shufflenet_v2_x1_0": (69.362, TV),
    "resnext50_32x4d": (77.618, TV),
    "wide_resnet50_2": (78.468, TV),
}
