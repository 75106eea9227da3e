"""Solutions to the exercises of 04_mteb_scoring (teachers' copy; load with solutions=True)."""

import math

answer_1 = 160 / 3  # retrieval (50 + 30) / 2 = 40, STS 80, clustering 40 -> (40 + 80 + 40) / 3 = 53.33
answer_2 = (1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3))  # = 0.877
answer_3 = "Instruct: Retrieve semantically similar text.\nQuery: A cat sat."
answer_4 = 1.96 * math.sqrt(0.56 * 0.44 / 50)  # = 0.138: 50 rows cannot tell 0.55 from 0.57
answer_5 = 0.0  # rank 11 is past the cut-off: nothing relevant in the top 10

# shown after a right answer (course.check)
explain_1 = (
    "The mean over task types averages within each type first, so one type with many tasks does not "
    "outweigh the others: (40 + 80 + 40) / 3."
)
explain_2 = (
    "Each hit at rank r earns 1 / log2(r + 1): 1 + 1/log2(5) found, against 1 + 1/log2(3) for the ideal "
    "ranking with both documents on top."
)
explain_3 = (
    "STS has no documents: both sentences are queries, so each gets F2LLM's STS instruction in its "
    "Instruct/Query template."
)
explain_4 = (
    "The standard error is sqrt(0.56 x 0.44 / 50) = 0.070, times 1.96: on 50 rows an accuracy is known "
    "only to about +-0.14."
)
explain_5 = (
    "nDCG@10 only sees the first 10 ranks: at rank 10 the document still earns 1/log2(11) = 0.289, at rank 11 "
    "nothing, the same as not retrieving it at all."
)
