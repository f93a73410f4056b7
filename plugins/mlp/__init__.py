"""The multilayer perceptron, written by hand in numpy.

    activations.py  Activation(name, value, derivative): sigmoid, relu, tanh, leaky_relu, elu,
                    gelu, softplus, identity
    losses.py       Loss(name, value, gradient, link): cross_entropy (softmax fused), mse
    init.py         (fan_in, fan_out, rng) -> (W, b): uniform, normal, glorot_*, he_*, lecun_*
    optim.py        pydantic optimisers stepping one flat parameter vector: SGD, Adam, AdamW
    schedules.py    pydantic learning-rate schedules: constant, step, exponential, cosine, plateau
    model.py        MLP: every weight a view into one flat vector; forward, backward, save, load
    trainer.py      MLPTrain, the ``mlp_train`` stage's spec (fields, validation, schema)
    training.py     its training loop: epochs, batches, early stopping, per-layer diagnostics
    checkpoint.py   what a run carries between epochs, saved and resumed (bit-identical)
    history.py      Epoch, History: the per-epoch record, ``history.json``
    groups.py       the plugin groups the network declares (activations ... layers)
    checks.py       each group's full check, for plugin authors and ``nnpipe plugins --check``
"""
