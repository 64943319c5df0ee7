#include "spense_wgsp_ws.cuh"
template __global__ void spense_wgsp_ws_kernel<4, 1, 1, 256, 1, false>(const __grid_constant__ WgMaps, int, const int*, const int*, const int*, __nv_bfloat16*, int, int, int, int, int, int, int);
template __global__ void spense_wgsp_ws_kernel<4, 2, 1, 128, 1, false>(const __grid_constant__ WgMaps, int, const int*, const int*, const int*, __nv_bfloat16*, int, int, int, int, int, int, int);
