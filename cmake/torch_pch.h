// The torch headers every model/learner file uses; precompiled once (see CMakeLists.txt).
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/types.h>
