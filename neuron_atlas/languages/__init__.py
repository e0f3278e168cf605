"""Language reference data: tags (ISO 639, BCP-47, FLORES-200, names) and named panels."""
