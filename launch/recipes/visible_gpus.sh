# Sourced by launch/recipes/run_node.sh and launch/recipes/run_cluster.sh: how many GPUs a rank may use here.
# CUDA_VISIBLE_DEVICES, when set, is the answer (nvidia-smi lists every GPU regardless of it, and
# dist_train refuses more ranks on a node than the GPUs it can see); otherwise nvidia-smi -L.
visible_gpu_count() {
  if [ -n "${CUDA_VISIBLE_DEVICES+set}" ]; then
    tr ',' '\n' <<<"$CUDA_VISIBLE_DEVICES" | grep -c '[^[:space:]]' || true
  else
    nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true
  fi
}
