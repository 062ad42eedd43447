// OpenBLAS's CBLAS interface (apt: libopenblas-dev). Only cblas_sgemm and friends are used.
#include <cblas.h>
