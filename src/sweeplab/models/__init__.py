"""Classifier architectures as plain ``nn.Module`` classes, any of them trainable by
:class:`sweeplab.training.module.ClassifierModule`.

The contract: the constructor takes ``in_shape`` (channels, height, width) and ``num_classes``, then keyword-only
knobs; ``forward`` maps a float batch ``(N, C, H, W)`` to logits ``(N, num_classes)`` (never probabilities: the loss
applies the softmax); nothing here imports Lightning or Hydra. ``conf/model/NAME.yaml`` names each class as the
``_target_`` of a partial; the training code supplies the shape and class count. Config names: softmax, mlp,
three_layer, convnet, lenet, alexnet, vgg, nin, googlenet, resnet, torchvision (torchvision_model), one module each.

Shared knobs (see :mod:`sweeplab.models.layers`): ``activation``, ``dropout``, ``norm``, ``init`` and, for the
paper-sized networks, ``width_divisor``, which divides every hidden width so they fit a CPU. Bad values raise
``ValueError`` naming ``model.KNOB`` when the model is built.
"""
