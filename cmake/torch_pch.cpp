// Anchor for the precompiled torch header (cmake/torch_pch.h).
