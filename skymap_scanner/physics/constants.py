"""Physical constants of the track likelihood (values from physics.md: Ahrens et al. 2004, IceTray rpdf)."""

import math

#: Speed of light in vacuum, metres per nanosecond.
C_VACUUM_M_PER_NS = 0.299792458
#: Phase refractive index of South Pole ice (sets the Cherenkov angle).
N_PHASE = 1.3195
#: Group refractive index of South Pole ice (sets the photon travel speed).
N_GROUP = 1.35634
#: Cherenkov angle, radians.
THETA_CHERENKOV = math.acos(1.0 / N_PHASE)
#: Speed of light in ice (group velocity), metres per nanosecond.
C_ICE_M_PER_NS = C_VACUUM_M_PER_NS / N_GROUP

#: Pandel parameters for bulk ice.
PANDEL_TAU_NS = 556.7
PANDEL_LAMBDA_M = 33.29
PANDEL_ABSORPTION_M = 98.0
#: Default Gaussian timing jitter convolved with the Pandel pdf, nanoseconds.
PANDEL_JITTER_NS = 15.0

#: Effective-distance parametrisation d_eff = A*d + B + C*cos(eta) + D*cos(eta)**2.
D_EFF_A = 0.8395
D_EFF_B = 3.094
D_EFF_C = -3.946
D_EFF_D = 4.636
