"""Built-in model factories (``small-cnn``, ``resnet18``, ``resnet50``, ``densenet121``, ``monai-resnet18``,
``monai-densenet121``) and :func:`xalbench.wrap` for any torchvision/MONAI conv classifier."""
