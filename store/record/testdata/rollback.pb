01M83XJ880041061050R3GG28A†ùêÿ""
Alicealice@example.comlaptop* 
coopprodmatrix.example.com201JD5K4Z3N8E7QW2XG6H9T0ABC8@Jmatrix-synapseR4.0.0+v1.93.0babrabappbrollbackbmatrix.example.comb4.0.0+v1.93.0jupgrade broke federationr01JD5K4Z3N8E7QW2XG6H9T0XYZ¢
4.0.0+v1.93.04.1.0+v1.94.0