"""Built-in model factories: ``small-cnn`` (fast on CPU, 2D/3D) and ``resnet18`` (torchvision)."""
