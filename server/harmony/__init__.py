"""Everything that speaks Harmony. The only package that imports openai_harmony."""
