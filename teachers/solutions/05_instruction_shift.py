"""Solutions to the exercises of 05_instruction_shift (teachers' copy; load with solutions=True)."""

answer_1 = -1  # a mirror image is undone by a reflection: Q* = diag(-1, 1), det -1, and D = 0
answer_2 = 1.0  # Q* = R^T, so ||2 S R R^T - S||^2 / ||S||^2 = ||S||^2 / ||S||^2 = 1 (hence the kit's unit-norm scaling)
answer_3 = 10  # min over models of min(rows, dims) = min(10, 384, 10, 64)
answer_4 = ["b"]  # one Q turns all of a model's conditions (cosines kept); D is computed before choosing a reference
answer_5 = 0.0  # a permutation matrix is orthogonal: Procrustes undoes it exactly

# shown after a right answer (course.check)
explain_1 = (
    "A mirror image is a reflection, which an orthogonal Q with determinant -1 undoes exactly, so the "
    "distance after alignment is 0."
)
explain_2 = (
    "The best rotation undoes R, so what remains is 2S against S: the difference is S itself and the "
    "normalised distance is 1, which is why the kit scales every model to unit norm first (a scale alone "
    "would count as a difference)."
)
explain_3 = (
    "Procrustes compares the models on a common number of coordinates, limited by the smallest of rows "
    "and dimensions over the models: min(10, 384, 10, 64) = 10."
)
explain_4 = (
    "A rotation keeps every cosine within a model, so each model's displacements (a) stay, and the "
    "Procrustes distances (c) are computed before any reference is chosen; only cosines between points of"
    " different models (b) depend on which model the others are turned onto."
)
explain_5 = (
    "A permutation of the axes is an orthogonal matrix (a rotation or reflection of the space), so Procrustes "
    "finds it and nothing is left: D = 0. This is why two models' spaces can be compared at all: the order and "
    "orientation of their axes mean nothing."
)
