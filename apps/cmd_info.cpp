// `grpo info`: what this build runs on (versions, threads, BLAS, CPU features).
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <iostream>

#include "common/cli.h"
#include "common/torch_pch.h"
#include "model/runtime.h"

namespace {

int run_info(const grpo::Args& args) {
  int threads = grpo::set_torch_threads(args.get_int("threads"));
  std::cout << "libtorch      " << TORCH_VERSION << "\n"
            << "threads       " << threads << " intra-op\n"
            << "blas          " << grpo::loaded_blas_library() << "\n"
            << "cuda          " << (at::hasCUDA() ? "available" : "not available") << "\n"
            << "mkldnn (bf16) " << (at::hasMKLDNN() ? "yes" : "no") << "\n";
  return 0;
}

GRPO_COMMAND("info", "Show the runtime: LibTorch version, threads, BLAS library, devices", "",
             ({{"threads", "N", "intra-op threads (0 = all cores)", false, "0"}}), run_info);

}  // namespace
