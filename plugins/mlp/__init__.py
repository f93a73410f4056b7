"""The multilayer perceptron, written by hand in numpy.

    activations.py  Activation(name, value, derivative): sigmoid, relu, tanh, leaky_relu, elu,
                    gelu, softplus, identity
    losses.py       Loss(name, value, gradient, link): cross_entropy (softmax fused), mse
    init.py         (fan_in, fan_out, rng) -> (W, b): uniform, normal, glorot_*, he_*, lecun_*
    optim.py        pydantic optimisers stepping one flat parameter vector: SGD, Adam, AdamW
    schedules.py    pydantic learning-rate schedules: constant, step, exponential, cosine, plateau
    model.py        MLP: every weight a view into one flat vector; forward, backward, save, load
    trainer.py      MLPTrain, the ``mlp_train`` stage: history, early stopping, checkpoints
"""
