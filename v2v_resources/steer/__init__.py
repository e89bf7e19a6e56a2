"""Phase II: turn the clean plate into a flat illustration with the same silhouette."""
