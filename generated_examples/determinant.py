"""A determinant by cofactor expansion: a recursive helper whose depth is the matrix's size."""
import numpy as np


def minor(A, j):
    """A without its first row and its column j."""
    return np.concatenate([A[1:, :j], A[1:, j + 1:]], axis=1)


def det(A):
    """The determinant of A, expanded along its first row."""
    n = A.shape[0]
    if n == 1:
        return A[0, 0]
    total = 0.0
    for j in range(n):
        total = total + (-1.0) ** j * A[0, j] * det(minor(A, j))
    return total


def loss(A, target):
    """Pull the volume of A towards ``target``, keeping A small."""
    return (det(A) - target) ** 2 + 0.1 * np.sum(A * A)
