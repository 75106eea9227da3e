"""Solutions to the exercises of 05_instruction_shift (teachers' copy; load with solutions=True)."""

answer_1 = -1  # a mirror image is undone by a reflection: Q* = diag(-1, 1), det -1, and D = 0
answer_2 = 1.0  # Q* = R^T, so ||2 S R R^T - S||^2 / ||S||^2 = ||S||^2 / ||S||^2 = 1 (hence the kit's unit-norm scaling)
answer_3 = 10  # min over models of min(rows, dims) = min(10, 384, 10, 64)
answer_4 = ["b"]  # one Q turns all of a model's conditions (cosines kept); D is computed before choosing a reference
