"""Solutions to the exercises of 01_data_unification (teachers' copy; load with solutions=True)."""

answer_1 = 4  # scores 3.0 and 5.0 reach the threshold; each pair is used in both directions
answer_2 = [0, 2]  # case and whitespace variants; a missing full stop or "2" for "two" is another text
answer_3 = 0.83  # 4.9M of 5.9M (the "6M" of the paper, rounded)
answer_4 = 2  # F2LLM: neutral and contradicting hypotheses are both negatives

# shown after a right answer (course.check)
explain_1 = (
    "Two pairs reach the threshold, and each becomes a positive in both directions (s1 -> s2 and s2 -> "
    "s1): STS is symmetric."
)
explain_2 = (
    "normalize_text folds case and whitespace only; a missing full stop or a number written out is "
    "another text, so de-duplication keeps it."
)
explain_3 = (
    "4.9M retrieval samples of 5.9M in all: F2LLM's data is mostly retrieval, which is why its sampler, "
    "drawing by size, trains mostly retrieval steps."
)
explain_4 = (
    "F2LLM's rule takes the neutral and the contradicting hypothesis as hard negatives (2); the kit's stricter "
    "include_neutral=False keeps the contradiction only (1), since a neutral hypothesis may still be true."
)
