"""Training SelVA: stage 1 (TextSynch distillation) and stage 2 (generator flow matching)."""
