"""Classifier architectures as plain ``nn.Module`` classes.

The contract every architecture follows, so that any of them can be trained by
:class:`sweeplab.training.module.ClassifierModule`:

* the constructor takes ``in_shape`` (channels, height, width) and
  ``num_classes`` as its first two arguments, then keyword-only knobs;
* ``forward`` maps a float batch ``(N, C, H, W)`` to logits ``(N, num_classes)``
  (never probabilities: the loss applies the softmax);
* nothing here imports Lightning or Hydra. Each model has a config in
  ``conf/model/NAME.yaml`` whose ``_target_`` names the class and which is
  instantiated as a partial; the training code supplies the shape and class count.

Architectures (config name: class):

* ``softmax``: :class:`~sweeplab.models.softmax.SoftmaxRegression`
* ``mlp``: :class:`~sweeplab.models.mlp.MLP`
* ``three_layer``: :class:`~sweeplab.models.three_layer.ThreeLayerCNN`
* ``convnet``: :class:`~sweeplab.models.convnet.ConvNet`
* ``lenet``: :class:`~sweeplab.models.lenet.LeNet5`
* ``alexnet``: :class:`~sweeplab.models.alexnet.AlexNet`
* ``vgg``: :class:`~sweeplab.models.vgg.VGG`
* ``nin``: :class:`~sweeplab.models.nin.NiN`
* ``googlenet``: :class:`~sweeplab.models.googlenet.GoogLeNet`
* ``resnet``: :class:`~sweeplab.models.resnet.ResNet`
* ``torchvision``: :class:`~sweeplab.models.torchvision_model.TorchvisionModel`

Shared knobs (see :mod:`sweeplab.models.layers`): ``activation``, ``dropout``,
``norm``, ``init`` and, for the paper-sized networks, ``width_divisor``, which divides
every hidden width so they fit a CPU. Bad values raise ``ValueError`` naming
``model.KNOB`` when the model is built.
"""
