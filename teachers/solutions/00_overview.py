"""Solutions to the exercises of 00_overview (teachers' copy; load with solutions=True)."""

answer_1 = (24, 7)  # mined per retrieval query, sampled per micro-batch (docs/recipe.md §1, §1a)
answer_2 = 20.0  # scale = 1 / temperature = 1 / 0.05
answer_3 = 0  # "How do I reverse a list in Python?" (cosine 0.76; the answer sentence is 0.58)
answer_4 = "a cat on a mat"  # no instruction: the text as it is

# shown after a right answer (course.check)
explain_1 = (
    "F2LLM mines 24 negatives per retrieval query and the trainer samples 7 of them for each micro-batch,"
    " so a query meets different negatives across epochs."
)
explain_2 = (
    "The softmax divides each cosine by the temperature 0.05, so cosines (in [-1, 1]) become logits in "
    "[-20, 20]: a small difference in cosine becomes a large one in probability."
)
explain_3 = (
    "MiniLM puts the question about reversing a list closest: the same request in other words (cosine "
    "about 0.76); the sentence that answers it is related but says something else (about 0.58)."
)
explain_4 = (
    "Documents are embedded exactly as they are: only a query gets 'Instruct: ...\\nQuery: ' in front, so one "
    "document vector serves every task's queries."
)
