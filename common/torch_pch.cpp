// Anchor for the precompiled torch header (common/torch_pch.h).
